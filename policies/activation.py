"""How a version becomes the one the gates run, and how the database and Redis are kept in agreement.

Every act that changes the live policy (activation, rollback, trading state) runs `locked()`: one at a time (a
row lock on PostgreSQL, an IMMEDIATE transaction on SQLite), reading Redis first. `reconcile` makes the database
say what Redis says — Redis is the commit point, so after any failure past it, or a database restored from an
older backup, the database adopts Redis's version and records that it did. `commit` writes a new version to
Redis (replacing a document this control plane did not sign, and recording that) and then the database.
Version numbers are allocated above both the database's and Redis's, so they never go backwards.

Reconciliation only ever moves forwards: Redis running a genuine but older version than the newest this control
plane activated (its *floor*) means someone with Redis credentials put an old signed document back, or a write was
lost when a replica that had not received it was promoted (docs/redis-ha.md). That document is read as untrusted
(`read_live`), never adopted, and `restore_floor` writes the newest version again, raises a critical alert and
records an anomaly (docs/policy.md, "No rollback"); so it does when Redis holds no policy at all.
"""

import logging
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from cio_kernel.contracts.alert import Severity
from cio_kernel.contracts.identity import scope_key
from cio_kernel.policy.document import PolicyDocument
from cio_kernel.policy.spec import PolicySpec, TradingState
from cio_kernel.policy.store import build_document
from policies import live
from policies.models import ActivationLock, PolicyEvent, PolicyVersion, ProposerKind, Status, compact_spec

log = logging.getLogger(__name__)


def lock() -> None:
    """Serialise every act on the live policy (call inside a transaction)."""
    ActivationLock.objects.get_or_create(id=1)
    ActivationLock.objects.select_for_update().get(id=1)


def next_version(floor: int = 0) -> int:
    """Above every version the database knows and `floor` (what Redis holds): versions never go back, even after
    a database restore."""
    return max(PolicyVersion.objects.aggregate(top=Max("version"))["top"] or 0, floor) + 1


def floor() -> int:
    """The newest version this control plane activated: Redis may never run an older one."""
    return PolicyVersion.objects.filter(activated_at__isnull=False).aggregate(top=Max("version"))["top"] or 0


def read_live() -> live.LiveDocument:
    """What Redis holds, judged against the floor: an older genuine document is untrusted, like a forged one."""
    return live.read_live(floor())


def restore_floor(trace_id: str = "") -> PolicyVersion | None:
    """If Redis runs a genuine version older than the newest this control plane activated, or holds no policy at
    all, write the newest again (signed anew), raise a critical alert and record an anomaly. Both happen when a
    write is lost: to a Redis failover (the replica promoted had not received it, docs/redis-ha.md) or a restart
    without persistence; the first also when someone put an old document back. Gates refuse the older version
    (their floor) and go stale on a missing one, so it must be written again, not waited out. Call it outside any
    act's transaction, so the record stands whatever the act does next. Returns the newest activated version when
    Redis did not hold it (written back or not: the anomaly says), else None (nothing wrong, or Redis unreadable)."""
    try:
        state = read_live()
    except live.LiveUnavailableError:
        return None
    old = state.replayed
    if old is None and state.raw is not None:
        return None  # Redis holds the newest (or something untrusted, which the next activation replaces)
    newest = PolicyVersion.objects.filter(activated_at__isnull=False).order_by("-version").first()
    if newest is None:
        return None
    try:
        by = str(newest.activated_by) if newest.activated_by is not None else "control-plane"
        document = build_document(
            newest.parsed_spec, newest.version, by, at=newest.activated_at, signer=live.policy_signer()
        )
        notice = live.publish_document(document)
        outcome = f"v{newest.version} written again"
    except live.NewerVersionActiveError:
        notice, outcome = "not sent", f"Redis holds v{newest.version} or newer again (written meanwhile)"
    except live.LiveUnavailableError as exc:
        notice, outcome = "not sent", f"v{newest.version} could not be written again: {exc}"
    if old is not None:
        found = f"set back to v{old.version}, older than v{newest.version} (the newest activated)"
        reason = f"Redis ran v{old.version}, older than v{newest.version}: an older policy was put back or a write lost"
        detail: dict[str, Any] = {"redis_version": old.version, "redis_checksum": old.checksum}
        seen = {"redis_activated_by": old.activated_by, "redis_activated_at": old.activated_at.isoformat()}
        key = "policy_rollback"
    else:
        found = f"missing, not v{newest.version} (the newest activated)"
        reason = f"Redis held no policy, not v{newest.version}: a write lost (failover, restart) or deleted"
        detail, seen, key = {"redis_version": None}, {}, "policy_missing"
    detail["floor"] = newest.version
    title = f"policy:active was {found}: {outcome}"
    alert = live.raise_alert(Severity.CRITICAL, title, {"key": key, **detail, "outcome": outcome})
    log.error("%s (alert %s)", title, alert)
    PolicyEvent.objects.create(
        kind=PolicyEvent.Kind.ANOMALY,
        policy=newest,
        reason=f"{reason}; {outcome}",
        trace_id=trace_id,
        detail={**detail, **seen, "outcome": outcome, "notice": notice, "alert": alert},
    )
    return newest


def reconcile(state: live.LiveDocument, trace_id: str = "") -> PolicyVersion | None:
    """Make the database agree with Redis (call holding the lock); returns the active version. Never moves the
    database back below its floor, whatever `state` says."""
    document = state.document
    if document is not None and document.version < floor():
        document = None
    if document is None:
        # Nothing trustworthy in Redis: the database's record stands (the next activation replaces what is there).
        return PolicyVersion.objects.filter(status=Status.ACTIVE).order_by("-version").first()
    row = PolicyVersion.objects.filter(version=document.version).first()
    if row is None:
        row = _adopt(document, trace_id)
    elif row.checksum != document.checksum:
        PolicyEvent.objects.create(
            kind=PolicyEvent.Kind.ANOMALY,
            policy=row,
            reason=f"Redis runs v{document.version} with another spec than the database's v{row.version}",
            trace_id=trace_id,
            detail={"redis_checksum": document.checksum, "database_checksum": row.checksum},
        )
        return row if row.status == Status.ACTIVE else None
    if row.status != Status.ACTIVE:
        _make_active(row, None, timezone.now())
        PolicyEvent.objects.create(
            kind=PolicyEvent.Kind.RECONCILED,
            policy=row,
            reason=f"Redis runs v{row.version}; the database now says so too",
            trace_id=trace_id,
            detail={"activated_by": document.activated_by},
        )
    stale = PolicyVersion.objects.filter(status=Status.ACTIVE).exclude(pk=row.pk)
    if stale.exists():
        stale.update(status=Status.SUPERSEDED, superseded_at=timezone.now())
    return row


def _adopt(document: PolicyDocument, trace_id: str) -> PolicyVersion:
    """Redis runs a version the database never recorded (restored from an older backup): record it."""
    row = PolicyVersion(
        version=document.version,
        spec=compact_spec(document.spec),
        checksum=document.checksum,
        status=Status.ACTIVE,
        proposer_kind=ProposerKind.HUMAN,
        proposed_at=document.activated_at,
        rationale=f"adopted from Redis: activated by {document.activated_by} at {document.activated_at.isoformat()}",
        decision_reason="reconciled from Redis (signed by this control plane)",
        activated_at=document.activated_at,
    )
    row.save()
    PolicyEvent.objects.create(
        kind=PolicyEvent.Kind.RECONCILED,
        policy=row,
        reason=f"Redis runs v{row.version}, unknown to the database: adopted",
        trace_id=trace_id,
        detail={"activated_by": document.activated_by},
    )
    return row


def _make_active(row: PolicyVersion, by: AbstractBaseUser | None, now: Any) -> None:
    PolicyVersion.objects.filter(status=Status.ACTIVE).exclude(pk=row.pk).update(
        status=Status.SUPERSEDED, superseded_at=now
    )
    row.status, row.activated_at, row.pending_state = Status.ACTIVE, now, None
    fields = ["status", "activated_at", "pending_state"]
    if by is not None:
        row.activated_by = by
        fields.append("activated_by")
    row.save(update_fields=fields)


def commit(
    row: PolicyVersion,
    state: live.LiveDocument,
    by: AbstractBaseUser,
    event: str,
    reason: str,
    trace_id: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write `row` to Redis (the commit point), then record it as active. Raises `live.LiveUnavailableError`
    (nothing changed) or `live.NewerVersionActiveError` (someone else committed first)."""
    document = build_document(row.parsed_spec, row.version, str(by), signer=live.policy_signer())
    replacing = state.raw if state.problem else None
    notice = live.publish_document(document, replacing)
    if notice != "sent":
        log.error(
            "v%d is in Redis but the update notice failed (%s); gates pick it up on their next poll",
            row.version,
            notice,
        )
    now = timezone.now()
    if replacing is not None:
        PolicyEvent.objects.create(
            kind=PolicyEvent.Kind.ANOMALY,
            policy=row,
            actor=by,
            reason=f"replaced an untrusted document in Redis: {state.problem}",
            trace_id=trace_id,
        )
    _make_active(row, by, now)
    PolicyEvent.objects.create(
        kind=event,
        policy=row,
        actor=by,
        reason=reason,
        trace_id=trace_id,
        detail={"checksum": document.checksum, "notice": notice, **(detail or {})},
    )


def with_state(spec: PolicySpec, scope: str, key: str, state: TradingState) -> tuple[PolicySpec, TradingState]:
    """`spec` with one scope's trading state set, and that scope's state before. `key` is any spelling of the
    scope's identity: the policy holds it by key (`cio_kernel.contracts.identity.scope_key`)."""
    raw = spec.model_dump(mode="json", by_alias=True)
    key = scope_key(scope, key)
    if scope == "global":
        current = spec.global_rules.trading_state
        raw["global"]["trading_state"] = state.value
    else:
        table = "strategies" if scope == "strategy" else "symbols"
        unlisted = scope == "strategy" and key not in raw[table] and spec.global_rules.only_listed_strategies
        rules = raw[table].setdefault(key, {})
        current = TradingState(rules["trading_state"]) if rules.get("trading_state") else TradingState.ACTIVE
        if unlisted:
            # Refused altogether (STRATEGY_UNLISTED), which is stricter than halted: halting it changes nothing, and
            # any other state would admit it, which only a risk officer may do (a release).
            current = TradingState.HALTED
        rules["trading_state"] = state.value
    return PolicySpec.parse(raw), current


def persist_pending(state: live.LiveDocument, trace_id: str = "") -> list[PolicyVersion]:
    """Write trading states that reached the gates by notice while Redis was away (call holding the lock, with
    Redis reachable). Each is applied to the live document, so nothing decided in the meantime is undone."""
    done = []
    for row in PolicyVersion.objects.filter(pending_state__isnull=False).order_by("version"):
        active = reconcile(state, trace_id)
        base = state.document.spec if state.document is not None else active.parsed_spec if active else None
        change = row.pending_state or {}
        if base is None:
            continue
        spec, _ = with_state(base, change["scope"], change["key"], TradingState(change["state"]))
        target = row
        if row.version <= state.version or compact_spec(spec) != row.spec:
            target = PolicyVersion(
                version=next_version(state.version),
                spec=compact_spec(spec),
                status=Status.APPROVED,
                based_on=active,
                proposer_kind=row.proposer_kind,
                proposed_by=row.proposed_by,
                proposed_at=timezone.now(),
                rationale=f"{row.rationale} (re-derived from the live v{state.version} when Redis returned)",
                decided_by=row.decided_by,
                decided_at=row.decided_at,
                decision_reason=row.decision_reason,
            )
            target.full_clean(exclude=["version", "checksum"])
            target.save()
            row.status, row.pending_state, row.superseded_at = Status.SUPERSEDED, None, timezone.now()
            row.save(update_fields=["status", "pending_state", "superseded_at"])
        by = row.proposed_by
        assert by is not None
        commit(target, state, by, PolicyEvent.Kind.TRADING_STATE, "persisted after Redis returned", trace_id, change)
        state = read_live()
        done.append(target)
    return done


def in_lock(work: Any) -> Any:
    """Run `work()` in a transaction holding the activation lock."""
    with transaction.atomic():
        lock()
        return work()
