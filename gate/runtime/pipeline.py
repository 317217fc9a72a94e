"""One intent's way through the gate, minus the network: bytes in, the messages to send out.

`DecisionPipeline.process` charges the intent to its strategy's share of the gate
(`fair_share`), measures its raw bytes against the intake limits (`prescan`), validates, decides (with
`gate.decision.evaluate`), records a promotion in the gate state, and returns the reply envelope, the signal to
promote (if any) and the audit event. `shed` answers an intent the gate will not decide (it waited too long in
the queue) without parsing it; an intent over its strategy's share is answered the same way. The service only
publishes what these return, so everything here is exercised by tests without timing games.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, get_args

import orjson
from pydantic import ValidationError

from cio_kernel.contracts.audit_event import encode_audit_event
from cio_kernel.contracts.envelope import DecisionKind, FieldError, Reason, encode_decision_envelope
from cio_kernel.contracts.heartbeat import GateCounters
from cio_kernel.contracts.identity import IdentityError, is_canonical_symbol, strategy_key
from cio_kernel.contracts.intent import INTENT_ID_FIELDS, Action, Intent
from cio_kernel.contracts.promotion import encode_promotion_notice
from cio_kernel.contracts.signal import build_signal_payload, cio_stamp_json
from cio_kernel.ids import new_decision_id
from cio_kernel.intake_stream import decision_token
from cio_kernel.reason_codes import ReasonCode
from cio_kernel.redaction import may_hold_secrets, redact, redact_text
from cio_kernel.subjects import subject_token
from cio_kernel.trace_context import incoming_traceparent, traceparent_without_parsing
from gate.config import GateSettings
from gate.decision.evaluate import Verdict, evaluate
from gate.decision.state import GateState
from gate.policy.compiled import CompiledPolicy
from gate.runtime.clock import Clock, SystemClock
from gate.runtime.fair_share import CLAIMED, FairShare, intent_cost, share_key
from gate.runtime.prescan import IntakeLimits, prescan
from gate.runtime.telemetry import DecisionTrace, DecisionTracer

log = logging.getLogger(__name__)

_RAW_AUDIT_LIMIT = 4096
_CLAIMED_LEN = len(CLAIMED)
_RAW_AUDIT_STRING = 1024  # an invalid intent's strings are cut to this before redaction (the record keeps 4 KB)
_SUBJECT_LIMIT = 300  # an intake subject is the strategy's to choose; the audit record keeps a bounded prefix
ACTIONS: frozenset[str] = frozenset(get_args(Action))
_SUBJECT_FOR: dict[DecisionKind, str] = {
    "APPROVED": "approved",
    "REJECTED": "rejected",
    "RETRY_SAFE": "retry_safe",
}


class PolicySource(Protocol):
    """Where the pipeline gets the policy to decide with: `PolicySync` in the gate, a fixed policy in tests."""

    def usable(self, now_monotonic: float) -> CompiledPolicy | None: ...

    def is_stale(self, now_monotonic: float) -> bool: ...


class FixedPolicy:
    """A policy that is always fresh: for tests, the fuzzer and the benchmark's in-process measurements."""

    def __init__(self, policy: CompiledPolicy | None) -> None:
        self.policy = policy

    def usable(self, now_monotonic: float) -> CompiledPolicy | None:
        return self.policy

    def is_stale(self, now_monotonic: float) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class Outbound:
    subject: str
    payload: bytes
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: DecisionKind
    decision_id: str
    reply: Outbound | None
    signal: Outbound | None
    promotion: bytes | None  # PromotionNotice for peer gates, when promoted
    audit_subject: str
    audit_payload: bytes
    # The reply envelope, also published on the strategy's decision subject (docs/contracts.md).
    decision_subject: str
    envelope: bytes
    traceparent: str
    # For the gate's metrics (gate/runtime/metrics.py): the first reason's code ("" when none), and the latency the
    # audit record holds (queue wait estimate + deciding), so the histogram and the store agree.
    reason: str = ""
    latency_us: int = 0


class _Invalid(Exception):
    def __init__(self, message: str, field_errors: list[FieldError]) -> None:
        super().__init__(message)
        self.field_errors = field_errors


def _field_errors(exc: ValidationError) -> list[FieldError]:
    return [
        FieldError(field=".".join(str(p) for p in err["loc"]) or "(body)", message=err["msg"], type=err["type"])
        for err in exc.errors(include_url=False, include_input=False)
    ]


_SHED_REASON = Reason(
    code=ReasonCode.OVERLOADED,
    message="the gate is overloaded: this intent waited too long in its queue and was not decided; retry with backoff",
)
_INTERNAL_REASON = Reason(code=ReasonCode.INTERNAL_ERROR, message="internal error while deciding; retry")
_GATE_FAILED_REASON = Reason(
    code=ReasonCode.GATE_INTERNAL_ERROR,
    message="the gate failed while handling this intent: no trade was promoted; retrying is safe",
)
_OVER_BUDGET_REASON = Reason(
    code=ReasonCode.STRATEGY_OVER_BUDGET,
    message="this strategy used up its share of the gate: the intent was not decided; retry with backoff",
)


class DecisionPipeline:
    def __init__(
        self,
        settings: GateSettings,
        policy_source: PolicySource,
        state: GateState,
        tracer: DecisionTracer,
        counters: GateCounters,
        clock: Clock | None = None,
    ) -> None:
        self._settings = settings
        self._policy_source = policy_source
        self._state = state
        self._tracer = tracer
        self._counters = counters
        self._clock: Clock = clock or SystemClock()
        self._wall = self._clock.time
        self._monotonic = self._clock.monotonic
        self._budget_s = settings.decision_budget_ms / 1000.0
        self._signal_subjects: dict[str, str] = {}
        self._decision_subjects: dict[str, str] = {}
        self._audit_subjects = {kind: f"{settings.audit_decision_prefix}.{sub}" for kind, sub in _SUBJECT_FOR.items()}
        self._limits = IntakeLimits(
            max_bytes=settings.max_intent_bytes,
            max_depth=settings.max_intent_depth,
            max_members=settings.max_intent_members,
            max_string_bytes=settings.max_intent_string_bytes,
        )
        # The burst always pays for the largest intent the gate takes, so no intent is refused for its size alone.
        burst = max(settings.strategy_budget_burst, intent_cost(settings.max_intent_bytes))
        self._share = FairShare(settings.strategy_budget_per_s, burst, open_share=settings.strategy_budget_open_share)

    def process(
        self,
        subject: str,
        data: bytes,
        headers: dict[str, str] | None,
        reply_to: str | None,
        queued_s: float = 0.0,
        decision_id: str | None = None,
        final: Reason | None = None,
    ) -> Outcome:
        """Decide one message. `queued_s` is how long it is estimated to have waited in the gate before this
        call; it counts against the decision budget like the decision itself. `decision_id` is given by the
        intake stream's path (the same id on every delivery). `final` marks an intent past its freshness: it is
        never promoted; unless rejected, it is RETRY_SAFE with `final` as its first reason."""
        started = self._monotonic()
        key = share_key(subject, data)
        if not self._share.admit(key, 1.0 + (len(data) >> 9), started, self._protected_share(key, started)):
            self._counters.over_budget += 1
            return self._unparsed(
                subject, data, headers, reply_to, queued_s, _OVER_BUDGET_REASON, decision_id=decision_id, final=final
            )
        self._counters.received += 1
        try:
            now = self._wall()
            body, invalid = self._parse(data)
            trace = self._tracer.start(incoming_traceparent(headers, body))
            intent: Intent | None = None
            if invalid is None:
                intent, invalid = self._validate(body)

            policy: CompiledPolicy | None = None
            verdict: Verdict | None = None
            if invalid is not None:
                decision: DecisionKind = "REJECTED"
                reasons: tuple[Reason, ...] = (Reason(code=ReasonCode.VAL_ERR, message=str(invalid)),)
                self._counters.invalid += 1
            else:
                assert intent is not None
                decision, reasons, policy, verdict = self._decide(intent, now, started - queued_s, subject)
            if final is not None and decision != "REJECTED":
                # Too late to promote, whatever the policy says (one with no timestamp rule would approve).
                reasons = (final, *reasons) if decision == "RETRY_SAFE" else (final,)
                decision, verdict = "RETRY_SAFE", None

            if decision_id is None:
                decision_id = new_decision_id()
            intent_dump = intent.model_dump(mode="json", exclude_none=True) if intent is not None else None
            if intent is not None and intent.timestamp is not None and intent_dump is not None:
                intent_dump["timestamp"] = intent.timestamp.isoformat()  # "+00:00", readable by any fromisoformat
            signal: Outbound | None = None
            promotion: bytes | None = None
            if decision == "APPROVED":
                assert intent is not None and intent_dump is not None and policy is not None and verdict is not None
                signal = self._promote(intent, intent_dump, policy, verdict, decision_id, now, trace.traceparent)
                promotion = encode_promotion_notice(
                    gate_id=self._settings.gate_id,
                    ts=now,
                    strategy_id=intent.strategy_id,
                    strategy_key=intent.strategy_key,
                    symbol=intent.symbol,
                    action=intent.action,
                    intent_id=intent.intent_id,
                    notional_usd=verdict.notional_usd,
                    policy_version=policy.version,
                )
                self._counters.approved += 1
            elif decision == "REJECTED":
                self._counters.rejected += 1
            else:
                self._counters.retry_safe += 1

            signal_subject = signal.subject if signal is not None else None
            field_errors = invalid.field_errors if invalid is not None else None
            intent_id = intent.intent_id if intent is not None else _raw_intent_id(body)
            policy_version = policy.version if policy is not None else None
            latency_us = int((self._monotonic() - started + queued_s) * 1e6)
            envelope = encode_decision_envelope(
                decision=decision,
                decision_id=decision_id,
                intent_id=intent_id,
                policy_version=policy_version,
                reasons=reasons,
                signal_subject=signal_subject,
                field_errors=field_errors,
                trace_id=trace.trace_id,
            )
            reply = Outbound(reply_to, envelope, {"traceparent": trace.traceparent}) if reply_to else None
            body_key = intent.strategy_key if intent is not None else _raw_strategy_key(body)
            if intent_dump is not None and may_hold_secrets(data):
                audited_intent: dict[str, Any] | None = redact(intent_dump)
            else:
                audited_intent = intent_dump
            audit = encode_audit_event(
                decision_id=decision_id,
                ts=datetime.fromtimestamp(now, UTC),
                gate_id=self._settings.gate_id,
                subject=subject[:_SUBJECT_LIMIT],
                strategy_id=intent.strategy_id if intent is not None else _raw_str(body, "strategy_id"),
                strategy_key=body_key,
                symbol=intent.symbol if intent is not None else _raw_symbol(body),
                action=intent.action if intent is not None else _raw_action(body),
                intent_id=intent_id,
                decision=decision,
                reasons=reasons,
                field_errors=field_errors,
                policy_version=policy_version,
                policy_checksum=policy.checksum if policy is not None else None,
                trace_id=trace.trace_id,
                span_id=trace.span_id,
                traceparent=trace.traceparent,
                latency_us=latency_us,
                signal_subject=signal_subject,
                intent=audited_intent,
                raw_intent=_raw_for_audit(data, body) if intent is None else None,
                state=self._audited_state(verdict),
                shadow=self._settings.gate_shadow,
            )
            self._finish(trace, decision, decision_id, intent, reasons)
            return Outcome(
                decision=decision,
                decision_id=decision_id,
                reply=reply,
                signal=signal,
                promotion=promotion,
                audit_subject=self._audit_subjects[decision],
                audit_payload=audit,
                decision_subject=self._decision_subject(subject, body_key),
                envelope=envelope,
                traceparent=trace.traceparent,
                reason=reasons[0].code if reasons else "",
                latency_us=latency_us,
            )
        except Exception:
            # A bug must not cost the strategy its answer or the trail its record: RETRY_SAFE, never promoted (a
            # signal built before the failure is dropped with the rest), audited without the intent.
            log.exception("intent on %s could not be decided; answered RETRY_SAFE", subject[:_SUBJECT_LIMIT])
            return self._unparsed(
                subject, data, headers, reply_to, queued_s, _INTERNAL_REASON, True, decision_id, final
            )

    def _protected_share(self, key: str, now: float) -> bool:
        """Whether `key`'s bucket is kept apart from the open share: a strategy the policy marks `own_identity` on
        its own subject, or one the policy lists that publishes with the shared identity (by subject or by the id
        in its body). Ids nobody listed pay the open share too (fail closed: with no usable policy, or any error,
        every key pays it)."""
        if not key:
            return False
        try:
            policy = self._policy_source.usable(now)
        except Exception:
            return False
        if policy is None:
            return False
        if key.startswith(CLAIMED):
            return key[_CLAIMED_LEN:] in policy.listed_shared_keys
        return key in policy.own_identity_keys or key in policy.listed_shared_keys

    def shed(
        self, subject: str, data: bytes, headers: dict[str, str] | None, reply_to: str | None, queued_s: float
    ) -> Outcome:
        """Answer an intent the gate will not decide, at a small fraction of the cost of deciding: no parsing, no
        validation; RETRY_SAFE/OVERLOADED, audited like every decision (without the unparsed intent)."""
        self._counters.shed += 1
        return self._unparsed(subject, data, headers, reply_to, queued_s, _SHED_REASON)

    def failed(
        self,
        subject: str,
        data: bytes,
        headers: dict[str, str] | None,
        reply_to: str | None,
        queued_s: float,
        counted: bool,
    ) -> Outcome:
        """Answer an intent the gate failed on around its decision (the intake, or `process` itself raising):
        RETRY_SAFE/GATE_INTERNAL_ERROR, audited without the intent, never promoted. `counted`: already received."""
        return self._unparsed(subject, data, headers, reply_to, queued_s, _GATE_FAILED_REASON, counted)

    def _decision_subject(self, subject: str, body_key: str | None) -> str:
        token = decision_token(subject, body_key)
        found = self._decision_subjects.get(token)
        if found is None:
            if len(self._decision_subjects) > 10_000:
                self._decision_subjects.clear()
            found = self._decision_subjects[token] = f"{self._settings.decision_subject_prefix}.{token}"
        return found

    def _unparsed(
        self,
        subject: str,
        data: bytes,
        headers: dict[str, str] | None,
        reply_to: str | None,
        queued_s: float,
        reason: Reason,
        counted: bool = False,
        decision_id: str | None = None,
        final: Reason | None = None,
    ) -> Outcome:
        now = self._wall()
        if not counted:
            self._counters.received += 1
        self._counters.retry_safe += 1
        trace = self._tracer.start(traceparent_without_parsing(headers, data))
        if decision_id is None:
            decision_id = new_decision_id()
        reasons = (reason,) if final is None else (final, reason)
        envelope = encode_decision_envelope(
            decision="RETRY_SAFE",
            decision_id=decision_id,
            intent_id=None,
            policy_version=None,
            reasons=reasons,
            signal_subject=None,
            field_errors=None,
            trace_id=trace.trace_id,
        )
        reply = Outbound(reply_to, envelope, {"traceparent": trace.traceparent}) if reply_to else None
        latency_us = int(queued_s * 1e6)
        audit = encode_audit_event(
            decision_id=decision_id,
            ts=datetime.fromtimestamp(now, UTC),
            gate_id=self._settings.gate_id,
            subject=subject[:_SUBJECT_LIMIT],
            strategy_id=None,
            strategy_key=None,
            symbol=None,
            action=None,
            intent_id=None,
            decision="RETRY_SAFE",
            reasons=reasons,
            field_errors=None,
            policy_version=None,
            policy_checksum=None,
            trace_id=trace.trace_id,
            span_id=trace.span_id,
            traceparent=trace.traceparent,
            latency_us=latency_us,
            signal_subject=None,
            intent=None,
            raw_intent=None,
            state=None,
            shadow=self._settings.gate_shadow,
        )
        self._finish(trace, "RETRY_SAFE", decision_id, None, reasons)
        return Outcome(
            "RETRY_SAFE",
            decision_id,
            reply,
            None,
            None,
            self._audit_subjects["RETRY_SAFE"],
            audit,
            self._decision_subject(subject, None),
            envelope,
            trace.traceparent,
            reasons[0].code,
            latency_us,
        )

    @staticmethod
    def _finish(
        trace: DecisionTrace,
        decision: DecisionKind,
        decision_id: str,
        intent: Intent | None,
        reasons: tuple[Reason, ...],
    ) -> None:
        if trace.span is not None:
            strategy_id, symbol = (intent.strategy_id, intent.symbol) if intent is not None else (None, None)
            trace.finish(decision, decision_id, strategy_id, symbol, [r.code for r in reasons])

    def _audited_state(self, verdict: Verdict | None) -> dict[str, Any] | None:
        """What a reviewer needs to re-judge the decision besides the intent and the policy: the effective
        trading state and the portfolio snapshot it was judged against (None when none was held)."""
        if verdict is None:
            return None
        portfolio = self._state.portfolio
        return {
            "trading_state": verdict.limits.trading_state.value,
            "snapshot_ts": portfolio.ts if portfolio is not None else None,
        }

    def _parse(self, data: bytes) -> tuple[Any, _Invalid | None]:
        over = prescan(data, self._limits)
        if over is not None:
            return None, _Invalid(over.message, [FieldError(field="(body)", message=over.message, type=over.kind)])
        try:
            return orjson.loads(data), None
        except orjson.JSONDecodeError as exc:
            return None, _Invalid("payload is not JSON", [FieldError(field="(body)", message=str(exc), type="json")])

    @staticmethod
    def _validate(body: Any) -> tuple[Intent | None, _Invalid | None]:
        if not isinstance(body, dict):
            return None, _Invalid(
                "payload must be a JSON object",
                [FieldError(field="(body)", message="expected a JSON object", type="object_type")],
            )
        try:
            return Intent.model_validate(body), None
        except ValidationError as exc:
            errors = _field_errors(exc)
            return None, _Invalid(f"invalid intent: {len(errors)} field error(s)", errors)

    def _decide(
        self, intent: Intent, now: float, received: float, subject: str
    ) -> tuple[DecisionKind, tuple[Reason, ...], CompiledPolicy | None, Verdict | None]:
        """Fail closed: no usable policy, an error or a blown budget is RETRY_SAFE, never an approval."""
        budget_ms = self._settings.decision_budget_ms
        if self._monotonic() - received > self._budget_s:
            self._counters.decision_timeouts += 1
            return (
                "RETRY_SAFE",
                (
                    _timeout(
                        f"the intent waited longer than the {budget_ms:g} ms budget in the gate's "
                        "queue (overloaded); retry"
                    ),
                ),
                None,
                None,
            )
        monotonic_now = self._monotonic()
        policy = self._policy_source.usable(monotonic_now)
        if policy is None:
            if self._policy_source.is_stale(monotonic_now):
                reason = Reason(
                    code=ReasonCode.POLICY_STALE,
                    message="the gate could not confirm its policy with Redis recently; retry",
                )
            else:
                reason = Reason(code=ReasonCode.NO_POLICY, message="the gate has no active policy; retry")
            return "RETRY_SAFE", (reason,), None, None
        try:
            verdict = evaluate(intent, policy, self._state, now, subject)
        except Exception:
            log.exception("decision failed for %s/%s", intent.strategy_id, intent.symbol)
            reason = Reason(code=ReasonCode.INTERNAL_ERROR, message="internal error while deciding; retry")
            return "RETRY_SAFE", (reason,), policy, None
        if self._monotonic() - received > self._budget_s:
            self._counters.decision_timeouts += 1
            return "RETRY_SAFE", (_timeout(f"no decision within the {budget_ms:g} ms budget; retry"),), policy, verdict
        return ("APPROVED" if verdict.promote else "REJECTED"), verdict.reasons, policy, verdict

    def _promote(
        self,
        intent: Intent,
        intent_dump: dict[str, Any],
        policy: CompiledPolicy,
        verdict: Verdict,
        decision_id: str,
        now: float,
        traceparent: str,
    ) -> Outbound:
        stamp = cio_stamp_json(decision_id, policy.version, datetime.fromtimestamp(now, UTC), intent.source)
        payload = build_signal_payload(dict(intent_dump), stamp, self._settings.signal_source, traceparent)
        self._state.record_promotion(intent, verdict.limits.rate_rules, verdict.notional_usd, now)
        return Outbound(self._signal_subject(intent.strategy_id), orjson.dumps(payload), {"traceparent": traceparent})

    def _signal_subject(self, strategy_id: str) -> str:
        subject = self._signal_subjects.get(strategy_id)
        if subject is None:
            if len(self._signal_subjects) > 10_000:
                self._signal_subjects.clear()
            subject = self._signal_subjects[strategy_id] = (
                f"{self._settings.signal_subject_prefix}.{subject_token(strategy_id)}"
            )
        return subject


def _timeout(message: str) -> Reason:
    return Reason(code=ReasonCode.DECISION_TIMEOUT, message=message)


def _raw_str(body: Any, key: str) -> str | None:
    if isinstance(body, dict):
        value = body.get(key)
        if isinstance(value, str):
            return value[:200]
    return None


def _raw_symbol(body: Any) -> str | None:
    """An invalid intent's symbol, when it is one (what arrived is in `raw_intent`): the audit record's indexed
    fields hold identities and bounded values only, so no input can make the store refuse the record."""
    value = body.get("symbol") if isinstance(body, dict) else None
    return value if is_canonical_symbol(value) else None


def _raw_action(body: Any) -> str | None:
    value = body.get("action") if isinstance(body, dict) else None
    return value if isinstance(value, str) and value in ACTIONS else None


def _raw_strategy_key(body: Any) -> str | None:
    """An invalid intent's strategy key when its id is a strategy id (so statistics count it for that strategy)."""
    try:
        return strategy_key(body.get("strategy_id")) if isinstance(body, dict) else None
    except IdentityError:
        return None


def _raw_intent_id(body: Any) -> str | None:
    for key in INTENT_ID_FIELDS:
        found = _raw_str(body, key)
        if found:
            return found
    return None


def _raw_for_audit(raw: bytes, body: Any) -> str:
    """What arrived, for the audit trail of a VAL_ERR: redacted, and truncated to a few KB. A body the intake
    limits refused was never parsed (`body` is None): its first bytes are kept as text. Strings are cut before
    they are redacted, so the work is bounded by what the record keeps, not by what was sent."""
    if isinstance(body, dict | list):
        text = orjson.dumps(redact(_clipped(body))).decode()
    else:
        # Only what the record keeps is redacted: a secret cut at the end loses its last word (`_cut`), not more.
        text = redact_text(_cut(raw[: _RAW_AUDIT_LIMIT + 4].decode("utf-8", errors="replace"), _RAW_AUDIT_LIMIT))
    return text[:_RAW_AUDIT_LIMIT]


def _clipped(value: Any) -> Any:
    """`value` with every string value cut to `_RAW_AUDIT_STRING` characters (nesting is bounded by the intake
    limits). Keys stay whole: a secret-looking key hides its value whatever the value's length."""
    if isinstance(value, dict):
        return {k: _clipped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clipped(v) for v in value]
    if isinstance(value, str) and len(value) > _RAW_AUDIT_STRING:
        return _cut(value, _RAW_AUDIT_STRING)
    return value


def _cut(text: str, limit: int) -> str:
    """`text` cut to `limit` characters at the last whitespace before it: a secret cut in half could no longer be
    recognised by its pattern (`https://user:hal` has no `@`), so the partial last word is dropped, not kept."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    end = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
    return head[:end] + " [cut]" if end > 0 else "[cut]"
