"""The cockpit over HTTP: the landing page (what a risk officer sees first after signing in), the same data as JSON
(the page reloads it when it may have missed a push), and the two acts it offers, each through the service every
other surface uses: halt / release a scope (`policies.services.set_trading_state`: a release is a loosening and
takes its four eyes there), acknowledge an alert (`alerting.escalation.acknowledge`) or an incident case
(`outages.services.acknowledge`)."""

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from alerting import escalation
from alerting import selectors as alert_selectors
from brakes.login import admin_login
from cockpit.panels import snapshot
from core import roles
from core.envelope import http_status, trace_id_of
from core.errors import DomainError, PermissionDeniedError, SpecInvalidError
from outages import services as incidents
from policies import services
from policies.outcomes import trading_state_outcome

HOME = "/"
_STATES = {"halt": "halted", "release": "active"}


def login(request: HttpRequest) -> HttpResponse:
    """The admin's login (brakes included), landing on the cockpit unless the officer was going elsewhere."""
    if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
        request.GET = request.GET.copy()
        request.GET[REDIRECT_FIELD_NAME] = HOME
    return admin_login(request)


def _refused() -> JsonResponse:
    return _answer(False, "sign in as staff of the control plane", PermissionDeniedError.code, 403)


@require_GET
@staff_member_required
def landing(request: HttpRequest) -> HttpResponse:
    if not roles.may_look(request.user):
        raise PermissionDenied("the cockpit is for the control plane's roles")
    context = {
        **admin.site.each_context(request),  # the admin's header, navigation and links around the cockpit
        "title": "Cockpit",
        "snapshot": snapshot(),
        "push_s": settings.CIO_COCKPIT_PUSH_S,
        "can_act": request.user.has_perm(roles.perm(roles.SET_TRADING_STATE))
        or request.user.has_perm(roles.perm(roles.TIGHTEN_TRADING_STATE)),
        "can_acknowledge": request.user.has_perm(roles.perm(roles.APPROVE)),
    }
    return render(request, "cockpit/landing.html", context)


@require_GET
def snapshot_json(request: HttpRequest) -> JsonResponse:
    if not roles.may_look(request.user):
        return _refused()
    return JsonResponse(snapshot())


def _answer(ok: bool, message: str, code: str = "", status: int = 200, **extra: Any) -> JsonResponse:
    return JsonResponse({"ok": ok, "code": code, "message": message, **extra}, status=status)


@require_POST
def trading_state(request: HttpRequest) -> JsonResponse:
    """`scope`, `key`, `action` (halt | release), `reason`: one row's button."""
    if not roles.may_look(request.user):
        return _refused()
    action = request.POST.get("action", "")
    if action not in _STATES:
        return _answer(False, "action must be halt or release", SpecInvalidError.code, 400)
    try:
        policy, created = services.set_trading_state(
            scope=request.POST.get("scope", ""),
            key=request.POST.get("key", ""),
            state=_STATES[action],
            by=request.user,
            reason=request.POST.get("reason", ""),
            trace_id=trace_id_of(request),
        )
    except DomainError as exc:
        return _answer(False, str(exc), exc.code, http_status(exc))
    return _answer(True, trading_state_outcome(policy, created), version=policy.version, policy_status=policy.status)


@require_POST
def acknowledge_incident(request: HttpRequest, incident_id: str) -> JsonResponse:
    """Open → acknowledged: the officer owns the case (and its alert stops escalating): `outages.services`."""
    if not roles.may_look(request.user):
        return _refused()
    try:
        case = incidents.acknowledge(incident_id, request.user, request.POST.get("note", "")[:500])
    except DomainError as exc:
        return _answer(False, str(exc), exc.code, http_status(exc))
    return _answer(True, f"incident acknowledged: {case.owner} owns it")


@require_POST
def acknowledge(request: HttpRequest, alert_id: str) -> JsonResponse:
    if not roles.may_look(request.user):
        return _refused()
    if not request.user.has_perm(roles.perm(roles.APPROVE)):
        return _answer(False, "only a risk officer acknowledges alerts", "PERMISSION_DENIED", 403)
    if alert_selectors.one(alert_id) is None:
        return _answer(False, f"no alert {alert_id[:80]}", "NOT_FOUND", 404)
    escalation.acknowledge(alert_id, request.user.get_username(), request.POST.get("note", "")[:500])
    return _answer(True, "acknowledged: no further escalation")
