"""Changes to the trade engine's configuration, with the same rules as policies: anyone who may propose policies
may propose one (validated here by the contract model, then by the engine itself without saving); a risk
officer other than the proposer approves it, and only then is it pushed; a rejection needs a reason. Domain
errors as in `core.errors`."""

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from pydantic import ValidationError

from cio_kernel.policy.spec import schema_problems
from cio_kernel.redaction import process_scrubber
from core import roles
from core.errors import (
    FourEyesError,
    InvalidTransitionError,
    NotFoundError,
    SpecInvalidError,
    UpstreamUnavailableError,
)
from tradeconfig import upstream
from tradeconfig.contract import ConfigScope, TradingParameters
from tradeconfig.models import HOLDS_SLOT, ChangeStatus, ConfigChange

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


def recent(status: str | None, limit: int) -> list[dict[str, Any]]:
    """Changes newest first (the model's order), optionally only those in `status`, at most `limit`, as REST and
    MCP show them."""
    query = ConfigChange.objects.select_related("proposed_by", "decided_by")
    if status:
        query = query.filter(status=status)
    return [as_dict(change) for change in query[:limit]]


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


def live_values(change: ConfigChange) -> dict[str, Any]:
    """The engine's current values of the parameters the change sets (raises `UpstreamUnavailableError`)."""
    try:
        live = upstream.get_config(scope_of(change.symbol, change.side)).parameters
    except upstream.UpstreamError as exc:
        raise UpstreamUnavailableError(f"the trade engine's live configuration cannot be read: {exc}") from exc
    return {name: live.get(name) for name in change.parameters}


def _same_key(a: ConfigChange, b: ConfigChange) -> bool:
    """Two changes touch the same key: the same scope and at least one parameter in common (identities compared
    in their canonical form, as the contract model stores them)."""
    return a.symbol == b.symbol and a.side == b.side and bool(set(a.parameters) & set(b.parameters))


def _newer_approved(row: ConfigChange) -> ConfigChange | None:
    """A change proposed after `row` for the same key that a risk officer has approved: `row` is then history."""
    later = ConfigChange.objects.filter(pk__gt=row.pk, symbol=row.symbol, side=row.side, decided_by__isnull=False)
    later = later.exclude(status=ChangeStatus.REJECTED).order_by("pk")
    return next((other for other in later if _same_key(row, other)), None)


def approve(
    change: ConfigChange, *, by: AbstractBaseUser, reason: str = "", expected_live: dict[str, Any] | None = None
) -> ConfigChange:
    """Approve (four eyes) against the engine's live values, then push. `expected_live` is what the approver was
    shown (the change's `live`): if the engine has moved since, nothing is approved. The live values are kept as
    `expected`, and every push of this change is conditional on them. Approving supersedes every change proposed
    earlier for the same key that was not yet applied: an old approval can never be replayed over this one."""
    roles.require(by, roles.APPROVE, "approve configuration changes")
    row = get(change.pk)
    if row.status != ChangeStatus.PROPOSED:
        raise InvalidTransitionError(f"change {row.pk} is {row.status}; only a proposed change can be approved")
    if row.proposed_by_id == by.pk:
        raise FourEyesError(f"change {row.pk} was proposed by {by}; a different risk officer must approve it")
    live = live_values(row)  # no approval against values nobody has seen: an engine that is away approves nothing
    if expected_live is not None and not _equal(expected_live, live):
        raise InvalidTransitionError(
            f"change {row.pk}: the live values moved since you saw them (now {live}); review it again"
        )
    with transaction.atomic():
        row = ConfigChange.objects.select_for_update().get(pk=change.pk)
        if row.status != ChangeStatus.PROPOSED:
            raise InvalidTransitionError(f"change {row.pk} is {row.status}; only a proposed change can be approved")
        row.decided_by, row.decided_at, row.decision_reason = by, timezone.now(), reason
        row.status, row.expected = ChangeStatus.APPROVED, live
        row.save()
        older = ConfigChange.objects.filter(
            pk__lt=row.pk,
            symbol=row.symbol,
            side=row.side,
            status__in=(ChangeStatus.PROPOSED, ChangeStatus.APPROVED, ChangeStatus.FAILED),
        )
        superseded = [other.pk for other in older if _same_key(row, other)]
        ConfigChange.objects.filter(
            pk__in=superseded, status__in=(ChangeStatus.PROPOSED, ChangeStatus.APPROVED, ChangeStatus.FAILED)
        ).update(status=ChangeStatus.SUPERSEDED, superseded_by=row)
    if superseded:
        log.info("config change %s supersedes %s", row.pk, superseded)
    return apply(row, by=by)


def _same_value(a: Any, b: Any) -> bool:
    # JSON numbers compare by value (the engine answers 2.0 for 2), but `True == 1` must not pass for a flag.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return set(a) == set(b) and all(_same_value(a[name], b[name]) for name in a)


def _claim(row: ConfigChange) -> bool:
    """Take the single apply slot for `row` (status → pushing). A conditional UPDATE on the row's status, and the
    unique `in_flight` column for the slot: two concurrent applies of the same change cannot both move it, and
    two changes cannot both hold the slot — the database refuses the second (SQLite serialises writers;
    PostgreSQL makes the second wait for the first's commit, then raises the unique violation)."""
    try:
        with transaction.atomic():
            return bool(
                ConfigChange.objects.filter(
                    pk=row.pk, status__in=(ChangeStatus.APPROVED, ChangeStatus.FAILED), in_flight__isnull=True
                ).update(status=ChangeStatus.PUSHING, in_flight=True, push_started_at=timezone.now())
            )
    except IntegrityError:
        return False


def _settle(row: ConfigChange, status: str, **fields: Any) -> ConfigChange:
    """Leave the slot with `status`. Only the holder of this very push settles it (its start time is the claim's
    token): a push reconciled meanwhile, or claimed again since, is left alone."""
    if status == ChangeStatus.APPLIED:
        fields.setdefault("applied_at", timezone.now())
    in_flight = True if status in HOLDS_SLOT else None
    ConfigChange.objects.filter(pk=row.pk, status__in=HOLDS_SLOT, push_started_at=row.push_started_at).update(
        status=status, in_flight=in_flight, **fields
    )
    return ConfigChange.objects.get(pk=row.pk)


def _holder() -> ConfigChange | None:
    return ConfigChange.objects.filter(in_flight=True).first()


def apply(change: ConfigChange, *, by: AbstractBaseUser) -> ConfigChange:
    """Push an approved change, one at a time, conditional on the live values it was approved against: the live
    values are read first; if they already are the change's, it is recorded applied without a write; if they
    moved away from `expected`, it is `stale` and never pushed. A change a later approval superseded is never
    pushed. A push whose outcome is unknown (a timeout after sending) is `unknown` and keeps the slot until
    `reconcile` settles it from the engine's live values. The engine's API has no conditional write (its GET
    answers version 1 for resolved scopes), so between our read and our write only a writer that bypasses the
    control plane can interleave; through the control plane nothing can (the slot)."""
    roles.require(by, roles.APPROVE, "apply configuration changes")
    row = get(change.pk)
    if row.status == ChangeStatus.UNKNOWN:
        raise InvalidTransitionError(f"change {row.pk}'s last push has an unknown outcome: reconcile it first")
    if row.status not in (ChangeStatus.APPROVED, ChangeStatus.FAILED) or row.decided_by_id is None:
        raise InvalidTransitionError(f"change {row.pk} is {row.status}; only an approved change not yet taken applies")
    if row.expected is None:
        raise InvalidTransitionError(f"change {row.pk} was approved without the live values; propose it again")
    newer = _newer_approved(row)
    if newer is not None:
        ConfigChange.objects.filter(pk=row.pk, status__in=(ChangeStatus.APPROVED, ChangeStatus.FAILED)).update(
            status=ChangeStatus.SUPERSEDED, superseded_by=newer
        )
        raise InvalidTransitionError(f"change {row.pk} is superseded by change {newer.pk}; it is never applied")
    if not _claim(row):
        holder = _holder()
        if holder is not None and holder.pk != row.pk:
            raise InvalidTransitionError(
                f"change {row.pk} is {row.status} but not pushed: change {holder.pk} is being pushed or its outcome "
                f"is unknown ({holder.status}); nothing else is pushed until it is settled (reconcile it), then "
                f"apply change {row.pk}"
            )
        raise InvalidTransitionError(f"change {row.pk} is already being applied")
    return _push_held(get(row.pk))


def _push_held(row: ConfigChange) -> ConfigChange:
    scope = scope_of(row.symbol, row.side)
    try:
        live = live_values(row)
    except UpstreamUnavailableError as exc:
        _settle(row, ChangeStatus.FAILED, upstream_error=str(exc))
        raise
    if _equal(live, row.parameters):
        return _settle(row, ChangeStatus.APPLIED, upstream_error="")  # the engine already has these values
    if not _equal(live, row.expected or {}):
        _settle(row, ChangeStatus.STALE, upstream_error=f"the live values moved since approval: {live}")
        raise InvalidTransitionError(
            f"change {row.pk}: the live values moved since it was approved (approved against {row.expected}, "
            f"now {live}); it is never pushed, propose it again"
        )
    try:
        answer = upstream.push(scope, row.parameters, f"petrosa-cio:{row.proposed_by}/{row.decided_by}", row.rationale)
    except upstream.UpstreamError as exc:
        if exc.outcome_unknown:
            _settle(row, ChangeStatus.UNKNOWN, upstream_error=str(exc))
            raise UpstreamUnavailableError(
                f"change {row.pk}: the trade engine may or may not have taken it ({exc}); it stays unknown, and "
                "nothing else is pushed, until it is reconciled with the engine"
            ) from exc
        _settle(row, ChangeStatus.FAILED, upstream_error=str(exc))
        raise UpstreamUnavailableError(
            f"change {row.pk} is approved but the trade engine did not take it: {exc}"
        ) from exc
    version = answer.version if answer is not None else None
    return _settle(row, ChangeStatus.APPLIED, upstream_version=version, upstream_error="")


def reconcile(change: ConfigChange, *, by: AbstractBaseUser) -> ConfigChange:
    """A risk officer settles a change whose push has an unknown outcome (`_settle_from_engine`)."""
    roles.require(by, roles.APPROVE, "reconcile configuration changes")
    return _settle_from_engine(get(change.pk))


def settle_pending() -> list[ConfigChange]:
    """The unattended pass (`manage.py reconcile_policies`): settle every push with an unknown outcome that the
    engine's live values can settle now; the rest wait for the next pass. It only reads the engine, never pushes."""
    settled = []
    for row in ConfigChange.objects.filter(status__in=HOLDS_SLOT).order_by("pk"):
        try:
            settled.append(_settle_from_engine(row))
        except (InvalidTransitionError, UpstreamUnavailableError) as exc:
            log.info("config change %s not settled yet: %s", row.pk, exc)
    return settled


def _settle_from_engine(row: ConfigChange) -> ConfigChange:
    """Settle from the engine's live values: the change's values → `applied`; the values it was approved against →
    not applied (`failed`, or `superseded` if a later change for the same key was approved meanwhile), but only
    once `CIO_TRADEENGINE_SETTLE_S` has passed since the push, so a push still on its way is not declared lost;
    anything else → `stale`. A `pushing` row is settled as not applied only after that delay too (its process
    may still be waiting for the answer, or may have died)."""
    if row.status not in HOLDS_SLOT:
        raise InvalidTransitionError(f"change {row.pk} is {row.status}; only an unknown push is reconciled")
    live = live_values(row)
    if _equal(live, row.parameters):
        return _settle(row, ChangeStatus.APPLIED, upstream_error="")
    settle_after = timedelta(seconds=settings.CIO_TRADEENGINE_SETTLE_S)
    if row.push_started_at is not None and timezone.now() - row.push_started_at < settle_after:
        raise InvalidTransitionError(
            f"change {row.pk} was pushed less than {settings.CIO_TRADEENGINE_SETTLE_S:g} s ago and the engine "
            "does not show it yet; reconcile again later"
        )
    if not _equal(live, row.expected or {}):
        return _settle(row, ChangeStatus.STALE, upstream_error=f"settled: the live values are neither: {live}")
    newer = _newer_approved(row)
    if newer is not None:
        return _settle(row, ChangeStatus.SUPERSEDED, superseded_by=newer, upstream_error="settled: not applied")
    return _settle(row, ChangeStatus.FAILED, upstream_error="settled: the engine did not take it")


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
        "expected": change.expected,
        "superseded_by": change.superseded_by_id,
        "push_started_at": change.push_started_at,
        "upstream_version": change.upstream_version,
        "upstream_error": change.upstream_error or None,
    }


def with_live(change: ConfigChange) -> dict[str, Any]:
    """The change as a reviewer sees it: with the engine's live values of its parameters now (`live`), which is
    what an approval is made against; `live` is null, with `live_error`, when the engine cannot be read."""
    answer = as_dict(change)
    try:
        answer["live"], answer["live_error"] = live_values(change), None
    except UpstreamUnavailableError as exc:
        answer["live"], answer["live_error"] = None, str(exc)
    return answer


class SettlePass:
    """`settle_pending` as a pass of `manage.py reconcile_policies` (installed by this app: `policies.extensions`)."""

    name = "reconcile"

    def run(self) -> list[str]:
        return [f"configuration change {c.pk} settled as {c.status}" for c in settle_pending()]
