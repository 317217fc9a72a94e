"""Everything that changes a policy goes through here: permissions, four-eyes and the envelope (for whoever may not
approve) are enforced in this layer, so admin, REST, MCP and the Strategist cannot differ."""

import logging
import re
import time
from typing import Any

import orjson
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from cio_kernel.contracts.identity import IdentityError, scope_key, strategy_key
from cio_kernel.contracts.latch import LatchRecord, parse_latch_id
from cio_kernel.contracts.trading_state_notice import TradingStateNotice
from cio_kernel.policy.document import policy_checksum
from cio_kernel.policy.spec import PolicySpec, TradingState
from cio_kernel.redaction import process_scrubber
from core import roles, tracing
from core.errors import (
    ActivationFailedError,
    FourEyesError,
    IdempotencyKeyReusedError,
    InvalidTransitionError,
    NotFoundError,
    OutsideEnvelopeError,
    PermissionDeniedError,
    SpecInvalidError,
    StoreUnavailableError,
)
from policies import activation, extensions, live, selectors
from policies.models import (
    PolicyEvent,
    PolicyVersion,
    ProposalKey,
    ProposerKind,
    Status,
    compact_spec,
    parse_spec,
)

log = logging.getLogger(__name__)


def proposer_kind_of(user: AbstractBaseUser) -> str:
    return ProposerKind.AGENT if user.groups.filter(name=roles.AGENT).exists() else ProposerKind.HUMAN


def _create(floor: int = 0, **fields: Any) -> PolicyVersion:
    for _ in range(5):  # two proposals racing for the same number: the unique index decides, we retry
        try:
            with transaction.atomic():
                policy = PolicyVersion(version=activation.next_version(floor), **fields)
                policy.full_clean(exclude=["version", "checksum"])
                policy.save()
                return policy
        except IntegrityError:
            continue
    raise InvalidTransitionError("could not allocate a version number; retry")


def _live_floor() -> int:
    """The version Redis holds, if it can be read: a proposal's number starts above it (never reused)."""
    try:
        return activation.read_live().version
    except live.LiveUnavailableError:
        return 0


def _failed(
    exc: ActivationFailedError, policy: PolicyVersion | None, by: AbstractBaseUser, operation: str, trace_id: str
) -> None:
    """Failures are recorded too, outside the transaction that was rolled back."""
    PolicyEvent.objects.create(
        kind=PolicyEvent.Kind.ACTIVATION_FAILED,
        policy=policy
        if policy is not None and policy.pk and PolicyVersion.objects.filter(pk=policy.pk).exists()
        else None,
        actor=by,
        reason=str(exc),
        trace_id=trace_id,
        detail={"operation": operation},
    )


def _read_live_or_fail(what: str) -> live.LiveDocument:
    try:
        return activation.read_live()
    except live.LiveUnavailableError as exc:
        raise ActivationFailedError(f"{what} failed: {exc}") from exc


def _commit(
    policy: PolicyVersion,
    state: live.LiveDocument,
    by: AbstractBaseUser,
    event: str,
    reason: str,
    trace_id: str,
    detail: dict[str, Any] | None = None,
) -> None:
    try:
        activation.commit(policy, state, by, event, reason, trace_id, detail)
    except live.NewerVersionActiveError as exc:
        raise InvalidTransitionError(f"v{policy.version} was not activated: {exc}") from exc
    except live.LiveUnavailableError as exc:
        raise ActivationFailedError(f"v{policy.version} was not activated: {exc}") from exc


def _after_commit_point(work: Any, what: str, trace_id: str) -> Any:
    """Run a locked act; if the database fails once Redis may already hold the change, reconcile from Redis
    (recording it) instead of answering with an error for something that did happen. First, an older policy
    put back in Redis is replaced by the newest (recorded outside the act, so the record stands if it fails)."""
    activation.restore_floor(trace_id)
    try:
        return activation.in_lock(work)
    except DatabaseError:
        log.exception("%s: the database failed; reconciling it from Redis", what)
        state = activation.read_live()
        return activation.in_lock(lambda: activation.reconcile(state, trace_id))


def _parsed(spec: Any) -> PolicySpec:
    try:
        return parse_spec(spec)
    except ValidationError as exc:
        raise SpecInvalidError("; ".join(exc.messages)) from exc


def propose(
    *,
    spec: Any,
    by: AbstractBaseUser,
    rationale: str = "",
    thought_id: str = "",
    kind: str | None = None,
    trace_id: str = "",
    record_refusal: bool = False,
) -> PolicyVersion:
    """A new `proposed` version. Whoever may not approve (agents, the Strategist) proposes inside the envelope,
    on every surface: outside it, `OutsideEnvelopeError` lists each breach, or with `record_refusal` (the
    Strategist, so officers see what it wanted) the version is recorded and rejected at once, unattended."""
    roles.require(by, roles.PROPOSE, "propose a policy")
    parsed = _parsed(spec)
    active = PolicyVersion.objects.filter(status=Status.ACTIVE).order_by("-version").first()
    breaches = extensions.proposal_breaches(by, parsed, active)
    if breaches and not record_refusal:
        raise OutsideEnvelopeError(f"outside the envelope risk officers set: {extensions.describe(breaches)}")
    policy = _create(
        floor=_live_floor(),
        spec=compact_spec(parsed),
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
    if breaches:
        return decide_unattended(
            policy,
            approve=False,
            reason=f"outside the envelope: {extensions.describe(breaches)}",
            trace_id=trace_id,
            detail={"breaches": [f"{b.scope}.{b.field}" for b in breaches]},
        )
    return policy


IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,128}")  # visible ASCII: a UUID, a ULID, a client's own request id


def submit(
    *,
    spec: Any,
    by: AbstractBaseUser,
    rationale: str = "",
    thought_id: str = "",
    idempotency_key: str = "",
    trace_id: str = "",
) -> tuple[PolicyVersion, bool]:
    """A proposal from a client that may send it twice (REST, MCP): the version and whether it is new. The same
    `idempotency_key` from the same account answers with the version it first made, and with another spec is
    refused (`IdempotencyKeyReusedError`); an agent's spec identical (canonical checksum) to an open proposal of
    its own on the same active version answers with that proposal. Anything else is `propose`."""
    if idempotency_key and not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise SpecInvalidError("idempotency key: 1 to 128 visible ASCII characters")
    checksum = policy_checksum(_parsed(spec))
    try:
        return _submit_once(spec, by, rationale, thought_id, idempotency_key, trace_id, checksum)
    except IntegrityError:  # the same key raced in (where the proposer's row lock is no lock: SQLite)
        return _submit_once(spec, by, rationale, thought_id, idempotency_key, trace_id, checksum)


def _submit_once(
    spec: Any,
    by: AbstractBaseUser,
    rationale: str,
    thought_id: str,
    idempotency_key: str,
    trace_id: str,
    checksum: str,
) -> tuple[PolicyVersion, bool]:
    with transaction.atomic():
        # One proposer's submissions one after the other: two identical ones racing cannot both find nothing.
        type(by).objects.select_for_update().filter(pk=by.pk).exists()
        if idempotency_key:
            known = ProposalKey.objects.select_related("policy").filter(user_id=by.pk, key=idempotency_key).first()
            if known is not None:
                if known.checksum != checksum:
                    raise IdempotencyKeyReusedError(
                        f"idempotency key already used for v{known.policy.version}, with another spec: "
                        "send a new key for a new proposal"
                    )
                return known.policy, False
        same = None
        if proposer_kind_of(by) == ProposerKind.AGENT:
            same = (
                PolicyVersion.objects.filter(
                    status=Status.PROPOSED, proposed_by_id=by.pk, checksum=checksum, based_on=selectors.active_version()
                )
                .order_by("-version")
                .first()
            )
        policy = same or propose(spec=spec, by=by, rationale=rationale, thought_id=thought_id, trace_id=trace_id)
        if idempotency_key:
            ProposalKey.objects.create(user_id=by.pk, key=idempotency_key, policy=policy, checksum=checksum)
        return policy, same is None


def amend(
    policy: PolicyVersion, *, spec: Any, by: AbstractBaseUser, rationale: str, thought_id: str = "", trace_id: str = ""
) -> PolicyVersion | None:
    """The Strategist's newer proposal written over its own open one (docs/strategist.md, "One open proposal"):
    the same version stays the one proposal under review, and what it held before is kept in an `amended` event
    (spec, checksum, rationale, thought and since when). Only while `selectors.awaiting_review` holds and the
    proposal is still on the active version; otherwise None, and the caller proposes a new version. The row is
    locked as a decision locks it (`_record_decision`), so an approval or rejection and an amendment happen one
    after the other: an amendment never rewrites a spec anyone approved or rejected. Checked against the envelope
    as any proposal (`OutsideEnvelopeError`)."""
    roles.require(by, roles.PROPOSE, "propose a policy")
    parsed = _parsed(spec)
    active = selectors.active_version()
    breaches = extensions.proposal_breaches(by, parsed, active)
    if breaches:
        raise OutsideEnvelopeError(f"outside the envelope risk officers set: {extensions.describe(breaches)}")
    with transaction.atomic():
        row = PolicyVersion.objects.select_for_update().filter(pk=policy.pk).first()
        if (
            row is None
            or row.proposer_kind != ProposerKind.STRATEGIST
            or row.proposed_by_id != by.pk
            or row.based_on_id != (active.pk if active else None)
            or not selectors.awaiting_review(row)
        ):
            return None
        last = row.events.filter(kind=PolicyEvent.Kind.AMENDED).order_by("-at", "-id").first()
        since = last.at if last is not None else row.proposed_at
        previous = {
            # Scrubbed as every record is: a free-text `description` an officer wrote may hold anything, and the
            # history must not copy a secret further. `checksum` is the unscrubbed spec's, so it still names it.
            "spec": process_scrubber().value(row.spec),
            "checksum": row.checksum,
            "rationale": row.rationale,
            "thought_id": row.thought_id,
            "since": since.isoformat() if since is not None else None,
        }
        checksum = policy_checksum(parsed)
        # An update, not `save()`: the model refuses any other change to a proposed spec.
        PolicyVersion.objects.filter(pk=row.pk, status=Status.PROPOSED).update(
            spec=compact_spec(parsed), checksum=checksum, rationale=rationale, thought_id=thought_id
        )
        PolicyEvent.objects.create(
            kind=PolicyEvent.Kind.AMENDED,
            policy=row,
            actor=by,
            reason=rationale,
            trace_id=trace_id,
            detail={"previous": previous, "checksum": checksum, "thought_id": thought_id},
        )
    return PolicyVersion.objects.get(pk=row.pk)


def _record_decision(
    policy: PolicyVersion,
    *,
    approve: bool,
    decided_by: AbstractBaseUser | None,
    actor: AbstractBaseUser | None,
    reason: str,
    trace_id: str,
    detail: dict[str, Any] | None = None,
    seen: str = "",
) -> PolicyVersion:
    with transaction.atomic():
        policy = PolicyVersion.objects.select_for_update().get(pk=policy.pk)
        if policy.status != Status.PROPOSED:
            raise InvalidTransitionError(
                f"v{policy.version} is {policy.status}; only a proposed version can be decided"
            )
        if seen and seen != policy.checksum:  # the Strategist amended it after the officer read it
            raise InvalidTransitionError(
                f"v{policy.version} changed since it was shown (checksum {policy.checksum}): read it again"
            )
        if approve and decided_by is not None and policy.proposed_by_id == decided_by.pk:
            raise FourEyesError(
                f"v{policy.version} was proposed by {decided_by}; a different risk officer must approve it"
            )
        policy.status = Status.APPROVED if approve else Status.REJECTED
        policy.decided_by, policy.decided_at, policy.decision_reason = decided_by, timezone.now(), reason
        policy.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
        kind = PolicyEvent.Kind.APPROVED if approve else PolicyEvent.Kind.REJECTED
        detail = {**(detail or {}), "checksum": policy.checksum} if approve else detail or {}  # what was approved
        PolicyEvent.objects.create(
            kind=kind, policy=policy, actor=actor, reason=reason, trace_id=trace_id, detail=detail
        )
    return policy


def _decide(
    policy: PolicyVersion, by: AbstractBaseUser, approve: bool, reason: str, trace_id: str, seen: str = ""
) -> PolicyVersion:
    roles.require(by, roles.APPROVE, "approve or reject policies")
    return _record_decision(
        policy, approve=approve, decided_by=by, actor=by, reason=reason, trace_id=trace_id, seen=seen
    )


def decide_unattended(
    policy: PolicyVersion,
    *,
    approve: bool,
    reason: str,
    authorised_by: AbstractBaseUser | None = None,
    rule: str = "",
    trace_id: str = "",
    detail: dict[str, Any] | None = None,
) -> PolicyVersion:
    """A decision no one made at the moment it was made: a refusal by a rule (a Strategist proposal outside its
    envelope, or overtaken by a newer one), or an approval by a named rule an officer enabled (the Strategist's
    auto-approval of pure tightenings). An approval needs the rule's name and that officer, who must still hold
    the right to approve and cannot be the proposer (four eyes hold as for any approval). The version is decided
    by no person (`decided_by` empty, the reason naming the rule); the event has no actor and names both."""
    if approve:
        if authorised_by is None or not rule:
            raise PermissionDeniedError("an unattended approval needs its rule and the officer who enabled it")
        roles.require(authorised_by, roles.APPROVE, "authorise approvals")
        if policy.proposed_by_id == authorised_by.pk:
            raise FourEyesError(f"v{policy.version} was proposed by {authorised_by}; their rule cannot approve it")
        detail = {"rule": rule, "rule_enabled_by": authorised_by.get_username(), **(detail or {})}
    return _record_decision(
        policy,
        approve=approve,
        decided_by=None,
        actor=None,
        reason=reason,
        trace_id=trace_id,
        detail={"unattended": True, **(detail or {})},
    )


def approve(
    policy: PolicyVersion, *, by: AbstractBaseUser, reason: str = "", trace_id: str = "", checksum: str = ""
) -> PolicyVersion:
    """`checksum`, when given, is the spec's checksum as the officer saw it: a Strategist proposal can be amended
    until someone reviews it, so an approval names what it approves and is refused if that changed."""
    return _decide(policy, by, True, reason, trace_id, checksum)


def reject(policy: PolicyVersion, *, by: AbstractBaseUser, reason: str, trace_id: str = "") -> PolicyVersion:
    if not reason.strip():
        raise SpecInvalidError("a rejection needs a reason")
    return _decide(policy, by, False, reason, trace_id)


def activate(policy: PolicyVersion, *, by: AbstractBaseUser, trace_id: str = "") -> PolicyVersion:
    """Make an approved version the live one. An approved version older than what is live (say, a kill switch
    landed after it was approved) cannot be activated: it was reviewed against a policy that no longer runs,
    and activating it would quietly undo the newer change. Propose it again on top of the live one."""
    with tracing.control_plane.span(
        tracing.ACTIVATE, trace_id=trace_id, attributes={"cio.policy_version": policy.version}
    ):
        return _activate(policy, by, trace_id)


def _activate(policy: PolicyVersion, by: AbstractBaseUser, trace_id: str) -> PolicyVersion:
    roles.require(by, roles.ACTIVATE, "activate policies")
    target = policy

    def work() -> PolicyVersion:
        state = _read_live_or_fail(f"activation of v{target.version}")
        active = activation.reconcile(state, trace_id)
        row = PolicyVersion.objects.get(pk=target.pk)
        if row.status != Status.APPROVED:
            raise InvalidTransitionError(f"v{row.version} is {row.status}; only an approved version can be activated")
        newest = max(state.version, active.version if active else 0)
        if newest >= row.version:
            raise InvalidTransitionError(
                f"v{newest} is live and newer than v{row.version}, which was approved against an older policy: "
                f"propose the change again on top of v{newest}"
            )
        _commit(row, state, by, PolicyEvent.Kind.ACTIVATED, "", trace_id)
        return row

    try:
        _after_commit_point(work, f"activation of v{policy.version}", trace_id)
    except ActivationFailedError as exc:
        _failed(exc, policy, by, "activate", trace_id)
        raise
    return PolicyVersion.objects.get(pk=policy.pk)


def seed_first_policy(*, spec: Any, by: AbstractBaseUser, rationale: str, trace_id: str = "") -> PolicyVersion | None:
    """Install the first policy of an empty history (a new installation's v1), through the same lock, Redis
    check-and-set and signature as any activation. With no earlier policy there is nothing to review it against,
    so it is recorded as proposed, approved and activated by `by` at once: meant for management commands run by
    whoever installs the stack, never exposed to users. Does nothing (returns None) once any history exists,
    including a policy Redis already runs (adopted by the reconciliation first)."""
    parsed = _parsed(spec)

    def work() -> PolicyVersion | None:
        state = _read_live_or_fail("seeding the first policy")
        activation.reconcile(state, trace_id)
        if PolicyVersion.objects.exists():
            return None
        now = timezone.now()
        row = PolicyVersion(
            version=activation.next_version(state.version),
            spec=compact_spec(parsed),
            status=Status.APPROVED,
            proposer_kind=ProposerKind.HUMAN,
            proposed_by=by,
            proposed_at=now,
            decided_by=by,
            decided_at=now,
            rationale=rationale,
            decision_reason="the first policy of an empty history",
        )
        row.full_clean(exclude=["version", "checksum"])
        row.save()
        PolicyEvent.objects.create(
            kind=PolicyEvent.Kind.PROPOSED, policy=row, actor=by, reason=rationale, trace_id=trace_id
        )
        _commit(row, state, by, PolicyEvent.Kind.ACTIVATED, "the first policy of an empty history", trace_id)
        return row

    try:
        seeded = _after_commit_point(work, "seeding the first policy", trace_id)
    except ActivationFailedError as exc:
        _failed(exc, None, by, "seed", trace_id)
        raise
    return PolicyVersion.objects.get(pk=seeded.pk) if seeded is not None else None


def strategy_keys_of(spec: dict[str, Any]) -> dict[str, str]:
    """{name as the stored spec spells it: its key} for every strategy whose name is not its key; `SpecInvalidError`
    when a name is no strategy id, or two names are one strategy (a person must merge their limits)."""
    renamed: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name in spec.get("strategies") or {}:
        try:
            key = strategy_key(name)
        except IdentityError as exc:
            raise SpecInvalidError(f"strategy {name[:60]!r}: {exc}") from exc
        if key in seen:
            raise SpecInvalidError(
                f"strategies {seen[key]!r} and {name!r} are one strategy ({key!r}): merge their limits in a proposal"
            )
        seen[key] = name
        if key != name:
            renamed[name] = key
    return renamed


def rekey_strategies(*, by: AbstractBaseUser, trace_id: str = "") -> PolicyVersion | None:
    """Upgrade step (`manage.py rekey_policy`): the active policy again as a new version whose strategies are
    named by their keys (docs/policy.md, "Identities"), signed and activated like any version. Policies stored
    before strategies were named by key no longer validate, and gates refuse them (failing closed); the renaming
    changes no limit, so, like a rollback, it keeps the approval the spec had and one risk officer does it.
    Returns the new version, or None when the active policy already names every strategy by its key."""
    roles.require(by, roles.ACTIVATE, "re-key the active policy")

    def work() -> PolicyVersion | None:
        state = _read_live_or_fail("re-keying the active policy")
        active = PolicyVersion.objects.filter(status=Status.ACTIVE).order_by("-version").first()
        if active is None:
            raise InvalidTransitionError("there is no active policy to re-key")
        renamed = strategy_keys_of(active.spec)
        if not renamed:
            return None
        spec = {**active.spec, "strategies": {renamed.get(k, k): v for k, v in active.spec["strategies"].items()}}
        try:
            parsed = parse_spec(spec)
        except ValidationError as exc:
            raise SpecInvalidError("; ".join(exc.messages)) from exc
        live_version = state.document.version if state.document is not None else _raw_version(state.raw)
        now = timezone.now()
        row = _create(
            floor=live_version,
            spec=compact_spec(parsed),
            status=Status.APPROVED,
            based_on=active,
            proposer_kind=ProposerKind.HUMAN,
            proposed_by=by,
            proposed_at=now,
            rationale=f"v{active.version} with its strategies named by their keys: "
            + ", ".join(f"{old!r} → {new!r}" for old, new in renamed.items()),
            decided_by=active.decided_by,
            decided_at=active.decided_at,
            decision_reason=f"approved as v{active.version}; only the strategies' names changed",
        )
        detail = {"rekeyed_from": active.version, "renamed": renamed}
        _commit(row, state, by, PolicyEvent.Kind.ACTIVATED, "strategies named by their keys", trace_id, detail)
        return row

    try:
        result = _after_commit_point(work, "re-keying the active policy", trace_id)
    except ActivationFailedError as exc:
        _failed(exc, None, by, "rekey", trace_id)
        raise
    return result


def _raw_version(raw: bytes | None) -> int:
    """The version a document Redis holds says it is, when this control plane cannot read it as a policy."""
    try:
        version = orjson.loads(raw).get("version") if raw else 0
    except (orjson.JSONDecodeError, AttributeError):
        return 0
    return version if isinstance(version, int) else 0


def rollback(to: PolicyVersion, *, by: AbstractBaseUser, reason: str, trace_id: str = "") -> PolicyVersion:
    """Activate an earlier version's spec again, as a new version. That spec already passed four-eyes review
    when it was first approved, so one risk officer may do this in one step."""
    roles.require(by, roles.ACTIVATE, "roll back policies")
    if to.activated_at is None:
        raise InvalidTransitionError(f"v{to.version} was never active; only a previously active spec can be restored")
    if not reason.strip():
        raise SpecInvalidError("a rollback needs a reason")

    def work() -> PolicyVersion:
        state = _read_live_or_fail(f"rollback to v{to.version}")
        active = activation.reconcile(state, trace_id)
        live_spec = state.document.spec if state.document is not None else (active.parsed_spec if active else None)
        if (
            settings.CIO_GLOBAL_RELEASE_NEEDS_SECOND_OFFICER
            and live_spec is not None
            and _releases_global_state(live_spec, to.parsed_spec)
        ):
            raise FourEyesError(
                f"rolling back to v{to.version} would release the global trading state "
                f"({live_spec.global_rules.trading_state.value} → {to.parsed_spec.global_rules.trading_state.value}), "
                "which takes a second risk officer: release it through the kill switch first, or propose the change"
            )
        row = _create(
            floor=state.version,
            spec=to.spec,
            status=Status.APPROVED,
            based_on=active,
            proposer_kind=ProposerKind.HUMAN,
            proposed_by=by,
            proposed_at=timezone.now(),
            rationale=f"rollback to v{to.version}: {reason}",
            decided_by=to.decided_by,
            decided_at=to.decided_at,
            decision_reason=f"approved as v{to.version}",
        )
        _commit(row, state, by, PolicyEvent.Kind.ROLLED_BACK, reason, trace_id, {"restored": to.version})
        return row

    try:
        result = _after_commit_point(work, f"rollback to v{to.version}", trace_id)
    except ActivationFailedError as exc:
        _failed(exc, to, by, "rollback", trace_id)
        raise
    return result


def set_trading_state(
    *, scope: str, key: str = "", state: str, by: AbstractBaseUser, reason: str, trace_id: str = ""
) -> tuple[PolicyVersion, bool]:
    """The kill switch: a new version with one scope's trading state changed, built on the live document.
    Tightening is open to agents; releasing (towards `active`) needs a human risk officer. A reason is
    mandatory. Returns the version now carrying the state and whether a new one was made (asking for the state
    a scope already has changes nothing). With Redis away, a tightening still reaches every gate at once as a
    signed NATS notice and is written to Redis when it returns; a release then fails, saying why."""
    # As asked, before validation: a refused request is traced too, so nothing longer than a name is exported.
    attributes = {"cio.scope": scope[:16], "cio.key": key[:64], "cio.trading_state": state[:16]}
    with tracing.control_plane.span(tracing.TRADING_STATE, trace_id=trace_id, attributes=attributes) as span:
        row, changed = _set_trading_state(scope, key, state, by, reason, trace_id)
        if span is not None:
            span.set_attributes({"cio.policy_version": row.version, "cio.changed": changed})
        return row, changed


def _set_trading_state(
    scope: str, key: str, state: str, by: AbstractBaseUser, reason: str, trace_id: str
) -> tuple[PolicyVersion, bool]:
    if scope not in ("global", "strategy", "symbol"):
        raise SpecInvalidError("scope must be global, strategy or symbol")
    if scope != "global" and not key:
        raise SpecInvalidError(f"a {scope} trading state needs the {scope} name in `key`")
    try:  # one key per identity: a halt on `Momentum-1` holds for every spelling of it
        key = scope_key(scope, key)
    except IdentityError as exc:
        raise SpecInvalidError(f"{scope} {key[:60]!r} is not a {scope}: {exc}") from exc
    if not reason.strip():
        raise SpecInvalidError("a trading-state change needs a reason")
    try:
        target = TradingState(state)
    except ValueError as exc:
        raise SpecInvalidError(f"state must be one of {', '.join(TradingState)}") from exc
    if not (by.has_perm(roles.perm(roles.SET_TRADING_STATE)) or by.has_perm(roles.perm(roles.TIGHTEN_TRADING_STATE))):
        raise PermissionDeniedError(f"{by} may not change trading states")
    label = "global" if scope == "global" else f"{scope} {key}"

    def work() -> tuple[PolicyVersion, bool]:
        try:
            current_live: live.LiveDocument | None = activation.read_live()
        except live.LiveUnavailableError:
            current_live = None
        if current_live is not None:
            activation.persist_pending(current_live, trace_id)
            current_live = activation.read_live()
            active = activation.reconcile(current_live, trace_id)
            base = current_live.document.spec if current_live.document is not None else None
        else:
            active = PolicyVersion.objects.filter(status=Status.ACTIVE).order_by("-version").first()
            pending = PolicyVersion.objects.filter(pending_state__isnull=False).order_by("-version").first()
            base = (pending or active).parsed_spec if (pending or active) else None
        if base is None:
            base = active.parsed_spec if active is not None else None
        if base is None:
            raise InvalidTransitionError("there is no active policy to change")
        spec, current = activation.with_state(base, scope, key, target)
        if target == current:
            assert active is not None
            return active, False
        releasing = target.severity < current.severity
        if releasing:
            roles.require(by, roles.SET_TRADING_STATE, "release a trading state (only a risk officer can)")
            if scope == "global" and settings.CIO_GLOBAL_RELEASE_NEEDS_SECOND_OFFICER:
                return _global_release(spec, current, target, active, current_live, by, reason, trace_id)
        now = timezone.now()
        row = _create(
            floor=current_live.version if current_live is not None else 0,
            spec=compact_spec(spec),
            status=Status.APPROVED,
            based_on=active,
            proposer_kind=proposer_kind_of(by),
            proposed_by=by,
            proposed_at=now,
            rationale=f"trading state {label}: {current.value} → {target.value}: {reason}",
            decided_by=by,
            decided_at=now,
            decision_reason="trading-state change",
        )
        detail = {"scope": scope, "key": key, "from": current.value, "to": target.value}
        if current_live is not None:
            _commit(row, current_live, by, PolicyEvent.Kind.TRADING_STATE, reason, trace_id, detail)
            return row, True
        if releasing:
            raise ActivationFailedError(f"Redis is unreachable: releasing {label} needs it (a halt would not)")
        _notify_without_redis(row, scope, key, target, reason, by, now)
        row.pending_state = {"scope": scope, "key": key, "state": target.value}
        row.save(update_fields=["pending_state"])
        PolicyEvent.objects.create(
            kind=PolicyEvent.Kind.TRADING_STATE,
            policy=row,
            actor=by,
            reason=reason,
            trace_id=trace_id,
            detail={**detail, "delivered": "signed NATS notice (Redis unreachable)", "persisted": False},
        )
        return row, True

    try:
        return _after_commit_point(work, f"trading state {label}", trace_id)
    except ActivationFailedError as exc:
        _failed(exc, None, by, f"trading state {label} → {target.value}", trace_id)
        raise


def _global_release(
    spec: Any,
    current: TradingState,
    target: TradingState,
    active: PolicyVersion | None,
    live_state: live.LiveDocument | None,
    by: AbstractBaseUser,
    reason: str,
    trace_id: str,
) -> tuple[PolicyVersion, bool]:
    """Releasing the global trading state is a loosening, so it takes two risk officers (on unless
    `CIO_GLOBAL_RELEASE_NEEDS_SECOND_OFFICER=0`). The first officer's release is a request: a `proposed` version,
    the live policy with the global state released. A second officer confirms it by asking for the same release
    (the same surface, the same action): it is applied to the live policy as a trading-state change, so nothing
    that went live since the request (a symbol halted meanwhile) is undone, and an agent tightening other scopes
    cannot keep a release from being confirmed. Approving and activating the request as any other proposal works
    too, while nothing else went live. The same officer asking again changes nothing. A request lapses when the
    global state changes after it (a new episode needs new agreement) or its officer loses the role. Nothing here
    ever delays a halt (tightening takes one step, as always)."""
    label = f"global {current.value} → {target.value}"
    if live_state is None:
        raise ActivationFailedError("Redis is unreachable: releasing global needs it (a halt would not)")
    requests = _open_release_requests(current, target)
    other = next((r for r in requests if r.proposed_by_id != by.pk), None)
    if other is None:
        if requests:
            return requests[0], False  # this officer asked already: a second officer must confirm
        request = _create(
            floor=live_state.version,
            spec=compact_spec(spec),
            status=Status.PROPOSED,
            based_on=active,
            proposer_kind=proposer_kind_of(by),
            proposed_by=by,
            proposed_at=timezone.now(),
            rationale=f"release request: trading state {label}: {reason}",
        )
        PolicyEvent.objects.create(
            kind=PolicyEvent.Kind.PROPOSED,
            policy=request,
            actor=by,
            reason=reason,
            trace_id=trace_id,
            detail={"release_request": {"scope": "global", "from": current.value, "to": target.value}},
        )
        return request, True
    requester = other.proposed_by
    detail = {
        "scope": "global",
        "key": "",
        "from": current.value,
        "to": target.value,
        "requested_by": requester.get_username() if requester is not None else "",
        "confirmed_by": by.get_username(),
        "request": other.version,
    }
    decision = f"release confirmed by a second officer: {reason}"
    if other.based_on_id == (active.pk if active else None) and other.checksum == policy_checksum(spec):
        confirmed = _record_decision(other, approve=True, decided_by=by, actor=by, reason=decision, trace_id=trace_id)
    else:  # the live policy moved on (another scope tightened): the agreed release, applied to what is live now
        now = timezone.now()
        confirmed = _create(
            floor=live_state.version,
            spec=compact_spec(spec),
            status=Status.APPROVED,
            based_on=active,
            proposer_kind=other.proposer_kind,
            proposed_by=requester,
            proposed_at=now,
            rationale=f"{other.rationale} (requested as v{other.version}, applied to the live v{live_state.version})",
            decided_by=by,
            decided_at=now,
            decision_reason=decision,
        )
        decide_unattended(
            other,
            approve=False,
            reason=f"confirmed as v{confirmed.version}, on top of the live v{live_state.version}",
            trace_id=trace_id,
        )
    _commit(confirmed, live_state, by, PolicyEvent.Kind.TRADING_STATE, reason, trace_id, detail)
    return confirmed, True


def _open_release_requests(current: TradingState, target: TradingState) -> list[PolicyVersion]:
    """Requests to release the global state from `current` to `target` that still stand: still proposed, made
    by someone who may still release, and the global state has not changed since (every version that went live
    after the one the request was made on kept it at `current`)."""
    events = PolicyEvent.objects.filter(
        kind=PolicyEvent.Kind.PROPOSED,
        policy__status=Status.PROPOSED,
        detail__release_request__from=current.value,
        detail__release_request__to=target.value,
    ).select_related("policy__proposed_by", "policy__based_on")
    standing = []
    for request in sorted({e.policy for e in events if e.policy is not None}, key=lambda r: r.version):
        officer = request.proposed_by
        if officer is None or not officer.has_perm(roles.perm(roles.SET_TRADING_STATE)):
            continue
        since = request.based_on.version if request.based_on is not None else 0
        went_live = PolicyVersion.objects.filter(version__gt=since, activated_at__isnull=False)
        # `current` is never `active` here (it is being released), so a stored spec always spells it out
        if went_live.count() == went_live.filter(spec__global__trading_state=current.value).count():
            standing.append(request)
    return standing


def _releases_global_state(live_spec: Any, restored: Any) -> bool:
    return bool(restored.global_rules.trading_state.severity < live_spec.global_rules.trading_state.severity)


def _notify_without_redis(
    row: PolicyVersion, scope: str, key: str, state: TradingState, reason: str, by: AbstractBaseUser, at: Any
) -> None:
    try:
        notice = TradingStateNotice(
            version=row.version, scope=scope, key=key, state=state, reason=reason, by=str(by), at=at
        ).signed_with(live.policy_signer())
        live.send_trading_state_notice(notice)
    except live.LiveUnavailableError as exc:
        raise ActivationFailedError(f"neither Redis nor NATS took the change, so no gate has it: {exc}") from exc


def reconcile_policies(trace_id: str = "") -> list[PolicyVersion]:
    """Put the newest version back if an older one was (see `activation.restore_floor`), write pending trading
    states and make the database agree with Redis (`manage.py reconcile_policies`)."""
    activation.restore_floor(trace_id)
    state = activation.read_live()

    def work() -> list[PolicyVersion]:
        done = activation.persist_pending(state, trace_id)
        activation.reconcile(activation.read_live(), trace_id)
        return done

    return activation.in_lock(work)


def release_latch(*, latch: str, by: AbstractBaseUser, reason: str, trace_id: str = "") -> LatchRecord:
    """A risk officer lifts a drawdown or daily-loss latch (the gate then admits opening intents again, until a
    newer snapshot breaches the limit). Redis is the commit point; the release is recorded with its reason."""
    roles.require(by, roles.SET_TRADING_STATE, "release a risk latch (only a risk officer can)")
    if not reason.strip():
        raise SpecInvalidError("releasing a latch needs a reason")
    try:
        latch = parse_latch_id(latch)
    except IdentityError as exc:
        raise SpecInvalidError(str(exc)) from exc
    try:
        released, notice = live.release_risk_latch(latch, time.time(), str(by), reason)
    except live.LiveUnavailableError as exc:
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
