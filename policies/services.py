"""Everything that changes a policy goes through here: permissions and four-eyes are enforced in this layer,
so admin, REST and MCP (later) cannot differ."""

import logging
import time
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from cio_site.envelope import ApiError
from gate.contracts.latch import LatchRecord
from gate.policy.spec import PolicySpec, TradingState
from gate.policy.store import build_document
from policies import roles
from policies.cache import (
    CacheUnavailableError,
    NewerVersionActiveError,
    NoticeNotSentError,
    publish_active_policy,
    release_risk_latch,
)
from policies.models import ActivationLock, PolicyEvent, PolicyVersion, ProposerKind, Status, parse_spec
from policies.selectors import active_version

log = logging.getLogger(__name__)


class PermissionDeniedError(ApiError):
    code, status = "PERMISSION_DENIED", 403


class FourEyesError(ApiError):
    code, status = "FOUR_EYES_VIOLATION", 403


class InvalidTransitionError(ApiError):
    code, status = "INVALID_TRANSITION", 409


class ActivationFailedError(ApiError):
    code, status = "ACTIVATION_FAILED", 503


class SpecInvalidError(ApiError):
    code, status = "VAL_ERR", 400


class NotFoundError(ApiError):
    code, status = "NOT_FOUND", 404


class StoreUnavailableError(ApiError):
    code, status = "SERVICE_UNAVAILABLE", 503


def _require(user: AbstractBaseUser, codename: str, action: str) -> None:
    if not user.has_perm(roles.perm(codename)):
        raise PermissionDeniedError(f"{user} may not {action}")


def proposer_kind_of(user: AbstractBaseUser) -> str:
    return ProposerKind.AGENT if user.groups.filter(name=roles.AGENT).exists() else ProposerKind.HUMAN


def _next_version() -> int:
    return (PolicyVersion.objects.aggregate(top=Max("version"))["top"] or 0) + 1


def _create(**fields: Any) -> PolicyVersion:
    for _ in range(5):  # two proposals racing for the same number: the unique index decides, we retry
        try:
            with transaction.atomic():
                policy = PolicyVersion(version=_next_version(), **fields)
                policy.full_clean(exclude=["version", "checksum"])
                policy.save()
                return policy
        except IntegrityError:
            continue
    raise InvalidTransitionError("could not allocate a version number; retry")


def propose(
    *,
    spec: Any,
    by: AbstractBaseUser,
    rationale: str = "",
    thought_id: str = "",
    kind: str | None = None,
    trace_id: str = "",
) -> PolicyVersion:
    _require(by, roles.PROPOSE, "propose a policy")
    try:
        parsed = parse_spec(spec)
    except ValidationError as exc:
        raise SpecInvalidError("; ".join(exc.messages)) from exc
    active = active_version()
    policy = _create(
        spec=parsed.model_dump(mode="json", by_alias=True),
        status=Status.PROPOSED,
        based_on=active,
        proposer_kind=kind or proposer_kind_of(by),
        proposed_by=by,
        proposed_at=timezone.now(),
        rationale=rationale,
        thought_id=thought_id,
    )
    PolicyEvent.objects.create(
        kind=PolicyEvent.Kind.PROPOSED,
        policy=policy,
        actor=by,
        reason=rationale,
        trace_id=trace_id,
        detail={"thought_id": thought_id} if thought_id else {},
    )
    return policy


def _decide(policy: PolicyVersion, by: AbstractBaseUser, approve: bool, reason: str, trace_id: str) -> PolicyVersion:
    _require(by, roles.APPROVE, "approve or reject policies")
    with transaction.atomic():
        policy = PolicyVersion.objects.select_for_update().get(pk=policy.pk)
        if policy.status != Status.PROPOSED:
            raise InvalidTransitionError(
                f"v{policy.version} is {policy.status}; only a proposed version can be decided"
            )
        if approve and policy.proposed_by_id == by.pk:
            raise FourEyesError(f"v{policy.version} was proposed by {by}; a different risk officer must approve it")
        policy.status = Status.APPROVED if approve else Status.REJECTED
        policy.decided_by, policy.decided_at, policy.decision_reason = by, timezone.now(), reason
        policy.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
        kind = PolicyEvent.Kind.APPROVED if approve else PolicyEvent.Kind.REJECTED
        PolicyEvent.objects.create(kind=kind, policy=policy, actor=by, reason=reason, trace_id=trace_id)
    return policy


def approve(policy: PolicyVersion, *, by: AbstractBaseUser, reason: str = "", trace_id: str = "") -> PolicyVersion:
    return _decide(policy, by, True, reason, trace_id)


def reject(policy: PolicyVersion, *, by: AbstractBaseUser, reason: str, trace_id: str = "") -> PolicyVersion:
    if not reason.strip():
        raise SpecInvalidError("a rejection needs a reason")
    return _decide(policy, by, False, reason, trace_id)


def _activate_locked(
    policy: PolicyVersion,
    by: AbstractBaseUser,
    trace_id: str,
    event: str,
    reason: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Publish to Redis + NATS, then record; any failure raises and the transaction rolls the records back."""
    ActivationLock.objects.get_or_create(id=1)
    ActivationLock.objects.select_for_update().get(id=1)  # activations run one at a time
    newer = PolicyVersion.objects.filter(status=Status.ACTIVE, version__gt=policy.version).first()
    if newer is not None:
        raise InvalidTransitionError(f"v{newer.version} is active and newer than v{policy.version}; roll back instead")
    document = build_document(policy.parsed_spec, policy.version, str(by))
    notice = "sent"
    try:
        publish_active_policy(document)
    except NoticeNotSentError as exc:
        # Redis is the commit point: the version is live (gates poll it), so the database must say so too.
        log.error("%s; gates will pick it up on their next poll", exc)
        notice = f"failed: {exc}"
    except NewerVersionActiveError as exc:
        raise InvalidTransitionError(str(exc)) from exc
    except CacheUnavailableError as exc:
        log.error("activation of v%d failed: %s", policy.version, exc)
        raise ActivationFailedError(f"v{policy.version} was not activated: {exc}") from exc
    now = timezone.now()
    PolicyVersion.objects.filter(status=Status.ACTIVE).exclude(pk=policy.pk).update(
        status=Status.SUPERSEDED, superseded_at=now
    )
    policy.status, policy.activated_by, policy.activated_at = Status.ACTIVE, by, now
    policy.save(update_fields=["status", "activated_by", "activated_at"])
    PolicyEvent.objects.create(
        kind=event,
        policy=policy,
        actor=by,
        reason=reason,
        trace_id=trace_id,
        detail={"checksum": document.checksum, "notice": notice, **(detail or {})},
    )


def activate(policy: PolicyVersion, *, by: AbstractBaseUser, trace_id: str = "") -> PolicyVersion:
    _require(by, roles.ACTIVATE, "activate policies")
    try:
        with transaction.atomic():
            policy = PolicyVersion.objects.select_for_update().get(pk=policy.pk)
            if policy.status != Status.APPROVED:
                raise InvalidTransitionError(
                    f"v{policy.version} is {policy.status}; only an approved version can be activated"
                )
            _activate_locked(policy, by, trace_id, PolicyEvent.Kind.ACTIVATED, "")
    except ActivationFailedError as exc:
        PolicyEvent.objects.create(
            kind=PolicyEvent.Kind.ACTIVATION_FAILED, policy=policy, actor=by, reason=str(exc), trace_id=trace_id
        )
        raise
    return policy


def rollback(to: PolicyVersion, *, by: AbstractBaseUser, reason: str, trace_id: str = "") -> PolicyVersion:
    """Activate an earlier version's spec again, as a new version. That spec already passed four-eyes review
    when it was first approved, so one risk officer may do this in one step."""
    _require(by, roles.ACTIVATE, "roll back policies")
    if to.activated_at is None:
        raise InvalidTransitionError(f"v{to.version} was never active; only a previously active spec can be restored")
    with transaction.atomic():
        policy = _create(
            spec=to.spec,
            status=Status.APPROVED,
            based_on=active_version(),
            proposer_kind=ProposerKind.HUMAN,
            proposed_by=by,
            proposed_at=timezone.now(),
            rationale=f"rollback to v{to.version}: {reason}",
            decided_by=to.decided_by,
            decided_at=to.decided_at,
            decision_reason=f"approved as v{to.version}",
        )
        _activate_locked(policy, by, trace_id, PolicyEvent.Kind.ROLLED_BACK, reason)
    return policy


def _with_state(spec: PolicySpec, scope: str, key: str, state: TradingState) -> tuple[PolicySpec, TradingState]:
    raw = spec.model_dump(mode="json", by_alias=True)
    if scope == "global":
        current = spec.global_rules.trading_state
        raw["global"]["trading_state"] = state.value
    else:
        table = "strategies" if scope == "strategy" else "symbols"
        rules = raw[table].setdefault(key, {})
        current = TradingState(rules["trading_state"]) if rules.get("trading_state") else TradingState.ACTIVE
        rules["trading_state"] = state.value
    return PolicySpec.model_validate(raw), current


def set_trading_state(
    *, scope: str, key: str = "", state: str, by: AbstractBaseUser, reason: str, trace_id: str = ""
) -> PolicyVersion:
    """The kill switch: a new active version with one scope's trading state changed. Tightening is open to
    agents; releasing (towards `active`) needs a human with the risk-officer role. A reason is mandatory."""
    if scope not in ("global", "strategy", "symbol"):
        raise SpecInvalidError("scope must be global, strategy or symbol")
    if scope != "global" and not key:
        raise SpecInvalidError(f"a {scope} trading state needs the {scope} name in `key`")
    if not reason.strip():
        raise SpecInvalidError("a trading-state change needs a reason")
    try:
        target = TradingState(state)
    except ValueError as exc:
        raise SpecInvalidError("state must be active, reducing or halted") from exc
    with transaction.atomic():
        current_policy = active_version(for_update=True)
        if current_policy is None:
            raise InvalidTransitionError("there is no active policy to change")
        spec, current = _with_state(current_policy.parsed_spec, scope, key, target)
        releasing = target.severity < current.severity
        if releasing:
            _require(by, roles.SET_TRADING_STATE, "release a trading state (only a risk officer can)")
        elif not (
            by.has_perm(roles.perm(roles.SET_TRADING_STATE)) or by.has_perm(roles.perm(roles.TIGHTEN_TRADING_STATE))
        ):
            raise PermissionDeniedError(f"{by} may not change trading states")
        now = timezone.now()
        label = "global" if scope == "global" else f"{scope} {key}"
        policy = _create(
            spec=spec.model_dump(mode="json", by_alias=True),
            status=Status.APPROVED,
            based_on=current_policy,
            proposer_kind=proposer_kind_of(by),
            proposed_by=by,
            proposed_at=now,
            rationale=f"trading state {label}: {current.value} → {target.value}: {reason}",
            decided_by=by,
            decided_at=now,
            decision_reason="trading-state change",
        )
        detail = {"scope": scope, "key": key, "from": current.value, "to": target.value}
        _activate_locked(policy, by, trace_id, PolicyEvent.Kind.TRADING_STATE, reason, detail)
    return policy


def release_latch(*, latch: str, by: AbstractBaseUser, reason: str, trace_id: str = "") -> LatchRecord:
    """A risk officer lifts a drawdown or daily-loss latch (the gate then admits opening intents again, until a
    newer snapshot breaches the limit). Redis is the commit point; the release is recorded with its reason."""
    _require(by, roles.SET_TRADING_STATE, "release a risk latch (only a risk officer can)")
    if not reason.strip():
        raise SpecInvalidError("releasing a latch needs a reason")
    try:
        released, notice = release_risk_latch(latch, time.time(), str(by), reason)
    except CacheUnavailableError as exc:
        raise StoreUnavailableError(f"latch {latch} was not released: {exc}") from exc
    if released is None:
        raise NotFoundError(f"no active latch '{latch}'")
    PolicyEvent.objects.create(
        kind=PolicyEvent.Kind.LATCH_RELEASED,
        actor=by,
        reason=reason,
        trace_id=trace_id,
        detail={**released.model_dump(mode="json"), "latch_id": latch, "notice": notice},
    )
    return released
