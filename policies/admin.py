"""Django admin built for risk officers: history with filters and search, readable specs and diffs, approve /
reject / activate / roll back with confirmation, the kill switch, and live gates at a glance. Every action
goes through `policies.services`, so the admin enforces exactly what the API enforces."""

import json
from typing import Any

import orjson
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from cio_kernel.policy.spec import TradingState
from core import roles
from core.admin import RecordAdmin
from core.envelope import trace_id_of
from core.errors import DomainError
from policies import extensions, services
from policies.admin_propose import propose_view
from policies.diff import diff_specs, summarise
from policies.impact_admin import impact_view
from policies.models import HISTORY_FIELDS, PolicyEvent, PolicyVersion, Status, compact_spec
from policies.outcomes import trading_state_outcome
from policies.selectors import active_version, gate_heartbeats, release_requests, risk_latch_state
from policies.spec_form import parse_with_check

_STATUS_COLOURS = {
    Status.ACTIVE: "#1b7f3a",
    Status.APPROVED: "#1f5fa8",
    Status.PROPOSED: "#a86b00",
    Status.REJECTED: "#a3262a",
    Status.SUPERSEDED: "#666",
    Status.DRAFT: "#666",
}


class ProposeForm(forms.ModelForm):
    spec = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 30, "cols": 110, "style": "font-family: monospace"}),
        help_text="The whole policy as JSON (docs/policy.md). Pre-filled with the active policy.",
    )
    rationale = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 110}), required=True)

    class Meta:
        model = PolicyVersion
        fields = ["spec", "rationale"]

    proposer: Any = None  # set per request by `PolicyVersionAdmin.get_form`

    def clean_spec(self) -> dict[str, Any]:
        raw = self.cleaned_data["spec"]
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise forms.ValidationError(f"not JSON: {exc}") from exc
        if isinstance(document, str):
            raise forms.ValidationError("the policy is a JSON object ({…}), not a string: is it quoted twice?")
        if not isinstance(document, dict):
            raise forms.ValidationError(f"the policy is a JSON object ({{…}}), not {type(document).__name__}")
        try:  # the same validation as the per-field view; `services.propose` checks the same again
            return compact_spec(parse_with_check(raw, self.proposer, active_version()))
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc

    def _post_clean(self) -> None:
        # The version is built, checked and saved by `services.propose`, never from this form's instance. Django's
        # instance validation (the model's `clean`) ran on a spec never set whenever the spec field had failed,
        # and added a spurious "spec: Input should be an object" above the form.
        return None


class TradingStateForm(forms.Form):
    scope = forms.ChoiceField(choices=[("global", "global"), ("strategy", "strategy"), ("symbol", "symbol")])
    key = forms.CharField(required=False, help_text="strategy id or symbol (not for global)")
    # Tightest first: the admin's default is the kill switch.
    state = forms.ChoiceField(
        choices=[(s.value, s.value) for s in sorted(TradingState, key=lambda s: s.severity, reverse=True)]
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2, "cols": 80}))


class LatchReleaseForm(forms.Form):
    latch = forms.CharField(max_length=300, help_text="the latch id from the list above")
    reason = forms.CharField(widget=forms.Textarea, help_text="why it is safe to trade again: recorded")


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2, "cols": 80}), required=False)


def _reviewed(base: Any, policy: PolicyVersion) -> tuple[PolicyVersion, list[str], str]:
    """A version as the confirmation page shows it: its diff against the active policy, and the counts."""
    changes = diff_specs(base, policy.parsed_spec)
    return policy, [str(c) for c in changes], summarise(changes)


class PolicyEventInline(admin.TabularInline):
    model = PolicyEvent
    fields = ["at", "kind", "actor", "reason", "detail", "trace_id"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    list_display = [
        "version",
        "status_badge",
        "proposer_kind",
        "proposed_by",
        "proposed_at",
        "decided_by",
        "activated_at",
        "full_rationale",
    ]
    list_filter = ["status", "proposer_kind"]
    search_fields = ["rationale", "thought_id", "proposed_by__username", "decided_by__username", "checksum"]
    list_select_related = ["proposed_by", "decided_by"]
    actions = ["approve_selected", "reject_selected", "activate_selected", "rollback_to_selected"]
    inlines = [PolicyEventInline]
    form = ProposeForm
    change_list_template = "admin/policies/policyversion/change_list.html"

    # -- list --------------------------------------------------------------------------------------------------
    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: PolicyVersion) -> str:
        colour = _STATUS_COLOURS.get(obj.status, "#666")
        return format_html('<b style="color:{}">{}</b>', colour, obj.get_status_display())

    @admin.display(description="rationale")
    def full_rationale(self, obj: PolicyVersion) -> str:
        # In full: the reason for a proposal is what an officer reads first. Its own line breaks kept, long lines
        # and long words wrapped inside the column.
        return format_html(
            '<div style="white-space: pre-line; overflow-wrap: anywhere; min-width: 24em; max-width: 60em">{}</div>',
            obj.rationale,
        )

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        active = active_version()
        extra = {
            "active_policy": active,
            "gates": (beats := gate_heartbeats()).live,
            "unverified_gates": beats.unverified,
            "trading_state_url": reverse("admin:policies_trading_state"),
            "latches_url": reverse("admin:policies_latches"),
        }
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    # -- detail: read-only, spec and diff rendered for people -------------------------------------------------------
    def get_fields(self, request: HttpRequest, obj: PolicyVersion | None = None) -> list[str]:
        if obj is None:
            return ["spec", "rationale"]
        panels = [panel.render for panel in extensions.VERSION_PANELS if panel.applies(obj)]
        return ["version", "status", "checksum", "rendered_spec", "diff_to_active", *HISTORY_FIELDS, *panels]

    def get_readonly_fields(self, request: HttpRequest, obj: PolicyVersion | None = None) -> list[str]:
        return [] if obj is None else self.get_fields(request, obj)

    def get_inlines(self, request: HttpRequest, obj: PolicyVersion | None) -> list[Any]:
        return [] if obj is None else self.inlines

    @admin.display(description="policy")
    def rendered_spec(self, obj: PolicyVersion) -> str:
        return format_html(
            '<pre style="white-space: pre-wrap">{}</pre>', json.dumps(obj.spec, indent=2, sort_keys=True)
        )

    @admin.display(description="changes against the active version")
    def diff_to_active(self, obj: PolicyVersion) -> str:
        active = active_version()
        if active is None:
            return "no version is active"
        if active.pk == obj.pk:
            return "this is the active version"
        changes = diff_specs(active.parsed_spec, obj.parsed_spec)
        if not changes:
            return f"identical to the active v{active.version}"
        return format_html(
            "<p>from active v{}: <b>{}</b></p><pre>{}</pre>",
            active.version,
            summarise(changes),
            format_html_join("\n", "{}", ((str(c),) for c in changes)),
        )

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None) -> Any:
        return propose_view(self, request)  # per field, or JSON for experts (policies/admin_propose.py)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        form.proposer = request.user  # a class made for this request: the envelope is checked for this user
        return form

    def has_change_permission(self, request: HttpRequest, obj: PolicyVersion | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)  # versions are never edited

    def has_delete_permission(self, request: HttpRequest, obj: PolicyVersion | None = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(roles.perm(roles.PROPOSE))

    def has_view_permission(self, request: HttpRequest, obj: PolicyVersion | None = None) -> bool:
        return request.user.has_perm(roles.perm(roles.VIEW))

    def save_model(self, request: HttpRequest, obj: PolicyVersion, form: forms.ModelForm, change: bool) -> None:
        proposed = services.propose(
            spec=form.cleaned_data["spec"],
            by=request.user,
            rationale=form.cleaned_data["rationale"],
            trace_id=trace_id_of(request),
        )
        obj.pk, obj.version = proposed.pk, proposed.version

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        return None

    # -- actions, each behind a confirmation page ------------------------------------------------------------
    def _run(
        self,
        request: HttpRequest,
        queryset: QuerySet[PolicyVersion],
        title: str,
        action: str,
        needs_reason: bool,
        operation: Any,
    ) -> TemplateResponse | None:
        """First POST (from the list): show what will change and ask for confirmation (and a reason where one is
        needed). Second POST (`confirm`): run `operation` on each selected version and report per version."""
        form = ReasonForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid() and needs_reason and not form.cleaned_data["reason"].strip():
            form.add_error("reason", "a reason is required")
        if not (form.is_bound and form.is_valid()):
            active = active_version()
            base = active.parsed_spec if active else None
            context = {
                **self.admin_site.each_context(request),
                "title": title,
                "queryset": queryset,
                "action": action,
                "needs_reason": needs_reason,
                "form": form,
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                "diffs": [_reviewed(base, p) for p in queryset],
            }
            return TemplateResponse(request, "admin/policies/confirm_action.html", context)
        for policy in queryset.order_by("version"):
            try:
                result = operation(policy, form.cleaned_data["reason"])
            except DomainError as exc:
                self.message_user(request, f"v{policy.version}: {exc.code}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"v{policy.version}: done ({result})", messages.SUCCESS)
        return None

    @admin.action(description="Approve selected versions")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[PolicyVersion]) -> TemplateResponse | None:
        trace = trace_id_of(request)
        return self._run(
            request,
            queryset,
            "Approve these versions?",
            "approve_selected",
            False,
            # the checksum each version had on the confirmation page: an amended proposal is not approved unseen
            lambda p, r: services.approve(
                p, by=request.user, reason=r, trace_id=trace, checksum=request.POST.get(f"checksum_{p.pk}", "")
            ),
        )

    @admin.action(description="Reject selected versions")
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[PolicyVersion]) -> TemplateResponse | None:
        trace = trace_id_of(request)
        return self._run(
            request,
            queryset,
            "Reject these versions?",
            "reject_selected",
            True,
            lambda p, r: services.reject(p, by=request.user, reason=r, trace_id=trace),
        )

    @admin.action(description="Activate the selected approved version")
    def activate_selected(self, request: HttpRequest, queryset: QuerySet[PolicyVersion]) -> TemplateResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "select exactly one version to activate", messages.ERROR)
            return None
        trace = trace_id_of(request)
        return self._run(
            request,
            queryset,
            "Activate this version? Gates switch to it within a second.",
            "activate_selected",
            False,
            lambda p, r: services.activate(p, by=request.user, trace_id=trace),
        )

    @admin.action(description="Roll back to the selected version (re-activate its spec as a new version)")
    def rollback_to_selected(self, request: HttpRequest, queryset: QuerySet[PolicyVersion]) -> TemplateResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "select exactly one version to roll back to", messages.ERROR)
            return None
        trace = trace_id_of(request)
        return self._run(
            request,
            queryset,
            "Roll back to this version's policy?",
            "rollback_to_selected",
            True,
            lambda p, r: services.rollback(p, by=request.user, reason=r, trace_id=trace),
        )

    # -- the kill switch -----------------------------------------------------------------------------------------
    def get_urls(self) -> list[Any]:
        extra = [
            path("trading-state/", self.admin_site.admin_view(self.trading_state_view), name="policies_trading_state"),
            path("latches/", self.admin_site.admin_view(self.latches_view), name="policies_latches"),
            path("<int:version>/impact/", self.admin_site.admin_view(impact_view), name="policies_impact"),
        ]
        return extra + super().get_urls()

    def trading_state_view(self, request: HttpRequest) -> HttpResponse:
        form = TradingStateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                policy, created = services.set_trading_state(
                    scope=data["scope"],
                    key=data["key"],
                    state=data["state"],
                    by=request.user,
                    reason=data["reason"],
                    trace_id=trace_id_of(request),
                )
            except DomainError as exc:
                self.message_user(request, f"{exc.code}: {exc}", messages.ERROR)
            else:
                message = trading_state_outcome(policy, created)
                self.message_user(request, message, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:policies_policyversion_changelist"))
        active = active_version()
        context = {
            **self.admin_site.each_context(request),
            "title": "Trading state (kill switch)",
            "form": form,
            "active_policy": active,
            "spec": active.parsed_spec if active else None,
            "second_officer": settings.CIO_GLOBAL_RELEASE_NEEDS_SECOND_OFFICER,
            "release_requests": release_requests(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/policies/trading_state.html", context)

    def latches_view(self, request: HttpRequest) -> HttpResponse:
        """Drawdown and daily-loss latches held in Redis, each with a release form (risk officers, with a reason)."""
        form = LatchReleaseForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                released = services.release_latch(
                    latch=form.cleaned_data["latch"],
                    by=request.user,
                    reason=form.cleaned_data["reason"],
                    trace_id=trace_id_of(request),
                )
            except DomainError as exc:
                self.message_user(request, f"{exc.code}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"latch {released.id} released", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:policies_latches"))
        try:
            (latches, problems), error = risk_latch_state(active_only=False), ""
        except Exception as exc:
            latches, problems, error = [], {}, f"Redis is unreachable: {exc!r}"
        context = {
            **self.admin_site.each_context(request),
            "title": "Risk latches (drawdown, daily loss)",
            "form": form,
            "active": [r for r in latches if r.active],
            "released": [r for r in latches if not r.active][:50],
            "error": error,
            "problems": sorted(problems.items()),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/policies/latches.html", context)


@admin.register(PolicyEvent)
class PolicyEventAdmin(RecordAdmin):
    list_display = ["at", "kind", "policy", "actor", "reason", "trace_id"]
    list_filter = ["kind"]
    search_fields = ["reason", "trace_id", "actor__username"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(roles.perm(roles.VIEW))
