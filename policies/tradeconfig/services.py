"""Changes to the trade engine's configuration, with the same rules as policies: anyone who may propose policies
may propose one (validated here by the contract model, then by the engine itself without saving); a risk
officer other than the proposer approves it, and only then is it pushed; a rejection needs a reason. Domain
errors as in `policies.errors`."""

import logging
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from pydantic import ValidationError

from cio_kernel.policy.spec import schema_problems
from cio_kernel.redaction import process_scrubber
from policies import roles
from policies.errors import (
    FourEyesError,
    InvalidTransitionError,
    NotFoundError,
    SpecInvalidError,
    UpstreamUnavailableError,
)
from policies.tradeconfig import upstream
from policies.tradeconfig.contract import ConfigScope, TradingParameters
from policies.tradeconfig.models import ChangeStatus, ConfigChange

log = logging.getLogger(__name__)


def scope_of(symbol: str | None, side: str | None) -> ConfigScope:
    try:
        return ConfigScope(symbol=symbol or None, side=side or None)
    except ValidationError as exc:
        raise SpecInvalidError("; ".join(schema_problems(exc, root="scope"))) from exc


def current(user: AbstractBaseUser, symbol: str | None = None, side: str | None = None) -> upstream.UpstreamConfig:
    roles.require(user, roles.VIEW, "read the trading configuration")
    try:
        return upstream.get_config(scope_of(symbol, side))
    except upstream.UpstreamError as exc:
        raise UpstreamUnavailableError(str(exc)) from exc


def propose(
    *,
    by: AbstractBaseUser,
    parameters: Any,
    rationale: str,
    symbol: str | None = None,
    side: str | None = None,
    trace_id: str = "",
) -> ConfigChange:
    roles.require(by, roles.PROPOSE, "propose configuration changes")
    if not rationale.strip():
        raise SpecInvalidError("a configuration change needs a rationale")
    scope = scope_of(symbol, side)
    try:
        checked = TradingParameters.model_validate(parameters).changed()
    except ValidationError as exc:
        raise SpecInvalidError("; ".join(f"parameters.{p}" for p in schema_problems(exc))) from exc
    if not checked:
        raise SpecInvalidError("parameters: name at least one parameter to change")
    before: dict[str, Any] = {}
    try:
        upstream.push(scope, checked, f"petrosa-cio:{by}", rationale, validate_only=True)  # the engine's own rules
        live = upstream.get_config(scope).parameters
        before = {name: live.get(name) for name in checked}
    except upstream.UpstreamError as exc:
        if not exc.retry_may_help:
            raise SpecInvalidError(f"{exc}{f': {exc.details}' if exc.details else ''}") from exc
        log.warning("config change proposed without the engine's check (it is away): %s", exc)
    return ConfigChange.objects.create(
        symbol=scope.symbol or "",
        side=scope.side or "",
        parameters=checked,
        before=before,
        rationale=process_scrubber().text(rationale),
        proposed_by=by,
        trace_id=trace_id,
    )


def get(change_id: int) -> ConfigChange:
    change = ConfigChange.objects.filter(pk=change_id).first()
    if change is None:
        raise NotFoundError(f"no configuration change {change_id}")
    return change


def reject(change: ConfigChange, *, by: AbstractBaseUser, reason: str) -> ConfigChange:
    roles.require(by, roles.APPROVE, "reject configuration changes")
    if not reason.strip():
        raise SpecInvalidError("a rejection needs a reason")
    with transaction.atomic():
        row = ConfigChange.objects.select_for_update().get(pk=change.pk)
        if row.status != ChangeStatus.PROPOSED:
            raise InvalidTransitionError(f"change {row.pk} is {row.status}; only a proposed change can be rejected")
        row.status, row.decided_by, row.decided_at, row.decision_reason = (
            ChangeStatus.REJECTED,
            by,
            timezone.now(),
            reason,
        )
        row.save()
    return row


def approve(change: ConfigChange, *, by: AbstractBaseUser, reason: str = "") -> ConfigChange:
    """Approve (four eyes) and push upstream at once. A push that fails leaves the change approved but `failed`,
    with the engine's error; `apply` pushes it again."""
    roles.require(by, roles.APPROVE, "approve configuration changes")
    with transaction.atomic():
        row = ConfigChange.objects.select_for_update().get(pk=change.pk)
        if row.status != ChangeStatus.PROPOSED:
            raise InvalidTransitionError(f"change {row.pk} is {row.status}; only a proposed change can be approved")
        if row.proposed_by_id == by.pk:
            raise FourEyesError(f"change {row.pk} was proposed by {by}; a different risk officer must approve it")
        row.decided_by, row.decided_at, row.decision_reason = by, timezone.now(), reason
        row.status = ChangeStatus.FAILED  # until the engine has taken it
        row.save()
    return apply(row, by=by)


def apply(change: ConfigChange, *, by: AbstractBaseUser) -> ConfigChange:
    roles.require(by, roles.APPROVE, "apply configuration changes")
    row = ConfigChange.objects.get(pk=change.pk)
    if row.status != ChangeStatus.FAILED or row.decided_by_id is None:
        raise InvalidTransitionError(f"change {row.pk} is {row.status}; only an approved change not yet taken applies")
    scope = scope_of(row.symbol, row.side)
    try:
        answer = upstream.push(scope, row.parameters, f"petrosa-cio:{row.proposed_by}/{row.decided_by}", row.rationale)
    except upstream.UpstreamError as exc:
        ConfigChange.objects.filter(pk=row.pk).update(upstream_error=str(exc))
        raise UpstreamUnavailableError(
            f"change {row.pk} is approved but the trade engine did not take it: {exc}"
        ) from exc
    version = answer.version if answer is not None else None
    ConfigChange.objects.filter(pk=row.pk).update(
        status=ChangeStatus.APPLIED, applied_at=timezone.now(), upstream_version=version, upstream_error=""
    )
    return ConfigChange.objects.get(pk=row.pk)


def as_dict(change: ConfigChange) -> dict[str, Any]:
    return {
        "id": change.pk,
        "scope": change.scope_label,
        "symbol": change.symbol or None,
        "side": change.side or None,
        "parameters": change.parameters,
        "before": change.before,
        "rationale": change.rationale,
        "status": change.status,
        "proposed_by": change.proposed_by.get_username(),
        "proposed_at": change.proposed_at,
        "decided_by": change.decided_by.get_username() if change.decided_by else None,
        "decided_at": change.decided_at,
        "decision_reason": change.decision_reason,
        "applied_at": change.applied_at,
        "upstream_version": change.upstream_version,
        "upstream_error": change.upstream_error or None,
    }
