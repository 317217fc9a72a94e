"""What the audit store keeps of one decision: the event exactly as the gate published it, its chain link, and
the fields a reviewer filters by, derived from that event (and checked against it by `audit_verify`)."""

from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from cio_kernel.audit_chain import ChainLink
from cio_kernel.audit_checkpoint import AuditCheckpoint
from cio_kernel.contracts.audit_event import AuditEvent
from cio_kernel.contracts.identity import IdentityError, strategy_key
from cio_kernel.shadow import is_shadow_subject


class InvalidEventError(ValueError):
    """A message on the audit stream that is not an audit event: kept in quarantine, never dropped."""


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    decision_id: str
    ts: datetime
    gate_id: str
    subject: str  # the intake subject the intent arrived on
    strategy_id: str | None  # as the strategy spelled it
    strategy_key: str | None  # what the gate's controls compared: what filters and statistics group by
    symbol: str | None
    action: str | None
    intent_id: str | None
    signal_id: str | None
    decision: str
    reason_codes: tuple[str, ...]
    policy_version: int | None
    policy_checksum: str | None
    trace_id: str
    span_id: str
    latency_us: int
    trading_state: str | None
    snapshot_ts: datetime | None
    audit_subject: str  # the stream subject it was published on (part of the chain link)
    payload: bytes  # the event exactly as published: the source of every field above
    chain: str | None
    seq: int | None
    prev_hash: str | None
    hash: str | None

    @classmethod
    def from_message(cls, audit_subject: str, payload: bytes, headers: dict[str, str] | None) -> "DecisionRecord":
        try:
            event = AuditEvent.model_validate_json(payload)
        except ValidationError as exc:
            raise InvalidEventError(f"not an audit event: {exc.error_count()} field error(s)") from exc
        return cls.of(event, audit_subject, payload, ChainLink.from_headers(headers))

    @classmethod
    def of(cls, event: AuditEvent, audit_subject: str, payload: bytes, link: ChainLink | None) -> "DecisionRecord":
        state = event.state or {}
        intent = event.intent or {}
        signal_id = intent.get("signal_id") or intent.get("id")
        return cls(
            decision_id=event.decision_id,
            ts=_utc(event.ts),
            gate_id=event.gate_id,
            subject=event.subject,
            strategy_id=event.strategy_id,
            strategy_key=event.strategy_key or _key_of(event.strategy_id),
            symbol=event.symbol,
            action=event.action,
            intent_id=event.intent_id,
            signal_id=str(signal_id) if signal_id is not None else None,
            decision=event.decision,
            reason_codes=tuple(dict.fromkeys(str(r.code) for r in event.reasons)),
            policy_version=event.policy_version,
            policy_checksum=event.policy_checksum,
            trace_id=event.trace_id,
            span_id=event.span_id,
            latency_us=event.latency_us,
            trading_state=state.get("trading_state"),
            snapshot_ts=_parse_ts(state.get("snapshot_ts")),
            audit_subject=audit_subject,
            payload=payload,
            chain=link.chain if link else None,
            seq=link.seq if link else None,
            prev_hash=link.prev if link else None,
            hash=link.hash if link else None,
        )

    @property
    def shadow(self) -> bool:
        """Decided by a gate in shadow mode: never promoted, nobody answered. Read from the subject it was audited
        on (covered by the chain link), as the store's `shadow` filter and the ingest read it."""
        return is_shadow_subject(self.audit_subject)

    @property
    def link(self) -> ChainLink | None:
        if self.chain is None or self.seq is None or self.prev_hash is None or self.hash is None:
            return None
        return ChainLink(self.chain, self.seq, self.prev_hash, self.hash)

    def event(self) -> AuditEvent:
        return AuditEvent.model_validate_json(self.payload)

    def event_dict(self) -> dict[str, Any]:
        return orjson.loads(self.payload)

    def derived_fields_match(self) -> bool:
        """Do the stored, filterable fields still say what the event says? (An edit of either shows here.)"""
        try:
            again = DecisionRecord.of(self.event(), self.audit_subject, self.payload, self.link)
        except ValidationError:
            return False
        return again.at_millisecond_precision() == self.at_millisecond_precision()

    def at_millisecond_precision(self) -> "DecisionRecord":
        """MongoDB keeps times to the millisecond: compare stored and derived records at that precision."""
        return replace(self, ts=_ms(self.ts), snapshot_ts=_ms(self.snapshot_ts) if self.snapshot_ts else None)


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A gate's signed checkpoint as the store keeps it: the chain and position it names (to find it by) and the
    checkpoint exactly as published (what its signature is checked on; `checkpoint()` reads it)."""

    chain: str
    seq: int
    payload: bytes

    @classmethod
    def from_message(cls, payload: bytes) -> "StoredCheckpoint":
        try:
            checkpoint = AuditCheckpoint.model_validate_json(payload)
        except ValidationError as exc:
            raise InvalidEventError(f"not an audit checkpoint: {exc.error_count()} field error(s)") from exc
        return cls(checkpoint.chain, checkpoint.seq, payload)

    @classmethod
    def of(cls, checkpoint: AuditCheckpoint) -> "StoredCheckpoint":
        return cls(checkpoint.chain, checkpoint.seq, checkpoint.model_dump_json().encode())

    def checkpoint(self) -> AuditCheckpoint | None:
        """The checkpoint, or None when the stored bytes are not one (or name another chain or position)."""
        try:
            checkpoint = AuditCheckpoint.model_validate_json(self.payload)
        except ValidationError:
            return None
        return checkpoint if (checkpoint.chain, checkpoint.seq) == (self.chain, self.seq) else None


@dataclass(frozen=True, slots=True)
class QuarantinedEvent:
    """A message on the audit stream that could not be read as an audit event, kept as it arrived."""

    stream_seq: int
    audit_subject: str
    payload: bytes
    headers: dict[str, str]
    problem: str
    received_at: datetime


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _ms(value: datetime) -> datetime:
    return _utc(value).replace(microsecond=value.microsecond // 1000 * 1000)


def _parse_ts(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return _utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Thought:
    """One Strategist reasoning cycle: what started it, what it looked at (an allow-listed summary, never a
    secret), which brain and model answered, what they said (redacted), whether that survived validation, and the
    policy version it produced (docs/strategist.md, "Thoughts")."""

    thought_id: str
    ts: datetime
    model: str
    inputs_summary: dict[str, Any]
    output: dict[str, Any]
    rationale: str
    proposed_version: int | None = None
    trigger: str = ""
    brain: str = ""  # "rules" or "llm"
    trace_id: str | None = None
    prompt_hash: str | None = None  # SHA-256 of the request sent to the model (None for the rule brain)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    validation: dict[str, Any] = field(default_factory=dict)
    fallback_reason: str | None = None  # why the LLM brain's answer was not used, when it was not
    duration_ms: int | None = None


THOUGHT_FIELDS = tuple(f.name for f in fields(Thought))


def thought_from(values: Any) -> Thought:
    """A Thought from a stored row or document (either backend); fields it predates take their defaults."""
    get = values.get if isinstance(values, dict) else lambda name, default=None: getattr(values, name, default)
    defaults = {f.name: f.default for f in fields(Thought) if f.default is not MISSING}
    defaults["validation"] = {}
    return Thought(**{name: _or(get(name, None), defaults.get(name)) for name in THOUGHT_FIELDS})


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


@dataclass(frozen=True, slots=True)
class Incident:
    """Something a risk officer would want to find again ("last time it looked like this"), with an embedding
    of what characterises it (`audit.embedding`)."""

    incident_id: str
    ts: datetime
    kind: str
    title: str
    detail: dict[str, Any]
    strategy_id: str | None
    symbol: str | None
    trace_id: str | None
    embedding: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert as the alerting bridge received it (SPEC §7), kept once. A repeat of the same source and title
    within the deduplication window is kept too, pointing at the first (`duplicate_of`), and not delivered."""

    alert_id: str
    ts: datetime
    severity: str
    source: str
    title: str
    detail: dict[str, Any]
    trace_id: str | None
    received_at: datetime
    duplicate_of: str | None = None


# What can happen to an alert after it arrived; every one is its own immutable record (docs/alerting.md).
DELIVERY = "delivery"  # one attempt on one channel: `outcome` delivered | retrying | failed | dead_letter | skipped
ACKNOWLEDGED = "acknowledged"  # a person acknowledged it (`detail.by`)
ESCALATED = "escalated"  # a critical alert nobody acknowledged was sent again (`detail.round`)
# The bridge (or the escalation sweep) queued a delivery: `channel`, `detail.round` and the SHA-256 of the nonce the
# task must echo. Only a task carrying that nonce may deliver; the broker never sees this record.
DISPATCHED = "dispatched"
# A delivery task the store has no dispatch for (forged, replayed against another round or channel, mangled): not
# delivered. Its own kind, so it never shows as a channel's outcome.
REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    event_id: str
    alert_id: str
    ts: datetime
    kind: str
    channel: str | None = None
    attempt: int = 0
    outcome: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


ALERT_FIELDS = tuple(f.name for f in fields(AlertRecord))
ALERT_EVENT_FIELDS = tuple(f.name for f in fields(AlertEvent))


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One MCP tool call: who called which tool with what (secrets redacted), and how it ended."""

    call_id: str
    ts: datetime
    user: str
    tool: str
    arguments: dict[str, Any]
    outcome: str  # "ok" or "error"
    error_code: str | None
    message: str
    trace_id: str
    duration_ms: int


TOOL_CALL_FIELDS = tuple(f.name for f in fields(ToolCall))


def _key_of(strategy_id: str | None) -> str | None:
    """The key of an event written before gates stamped one (None when the id is no strategy id)."""
    try:
        return strategy_key(strategy_id) if strategy_id is not None else None
    except IdentityError:
        return None
