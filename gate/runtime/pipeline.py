"""One intent's way through the gate, minus the network: bytes in, the messages to send out.

`DecisionPipeline.process` validates, decides (with `gate.decision.evaluate`), records a promotion in the
gate state, and returns the reply envelope, the signal to promote (if any) and the audit event. The service
only publishes what it returns, so everything here is exercised by tests without timing games.
"""

import logging
import os
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import ValidationError

from gate.config import GateSettings
from gate.contracts.audit_event import AuditEvent
from gate.contracts.envelope import (
    DecisionData,
    DecisionEnvelope,
    DecisionKind,
    ErrorBody,
    FieldError,
    Reason,
)
from gate.contracts.heartbeat import GateCounters
from gate.contracts.intent import Intent
from gate.contracts.promotion import PromotionNotice
from gate.contracts.signal import CioStamp, build_signal_payload
from gate.decision.evaluate import Verdict, evaluate
from gate.decision.state import GateState
from gate.policy.compiled import CompiledPolicy
from gate.reason_codes import ReasonCode
from gate.redaction import redact, redact_text
from gate.runtime.policy_sync import PolicySync
from gate.runtime.subjects import subject_token
from gate.runtime.telemetry import parent_context
from gate.runtime.trace_context import format_traceparent, incoming_traceparent

log = logging.getLogger(__name__)

_RAW_AUDIT_LIMIT = 4096
# Decision ids need uniqueness, not secrecy: a per-process generator seeded from the OS avoids a syscall per intent.
_ids = random.Random(os.urandom(32))
_SUBJECT_FOR: dict[DecisionKind, str] = {
    "APPROVED": "approved",
    "REJECTED": "rejected",
    "RETRY_SAFE": "retry_safe",
}


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


class _Invalid(Exception):
    def __init__(self, message: str, field_errors: list[FieldError]) -> None:
        super().__init__(message)
        self.field_errors = field_errors


def _field_errors(exc: ValidationError) -> list[FieldError]:
    return [
        FieldError(field=".".join(str(p) for p in err["loc"]) or "(body)", message=err["msg"], type=err["type"])
        for err in exc.errors(include_url=False, include_input=False)
    ]


class DecisionPipeline:
    def __init__(
        self,
        settings: GateSettings,
        policy_sync: PolicySync,
        state: GateState,
        tracer: trace.Tracer,
        counters: GateCounters,
    ) -> None:
        self._settings = settings
        self._policy_sync = policy_sync
        self._state = state
        self._tracer = tracer
        self._counters = counters
        self._budget_s = settings.decision_budget_ms / 1000.0
        self._signal_subjects: dict[str, str] = {}

    def process(
        self,
        subject: str,
        data: bytes,
        headers: dict[str, str] | None,
        reply_to: str | None,
        queued_s: float = 0.0,
    ) -> Outcome:
        """Decide one message. `queued_s` is how long it is estimated to have waited in the gate before this
        call; it counts against the decision budget like the decision itself."""
        started = time.perf_counter()
        now = time.time()
        self._counters.received += 1
        body, invalid = self._parse(data)
        span = self._tracer.start_span(
            "cio.gate.decide", context=parent_context(incoming_traceparent(headers, body)), kind=SpanKind.CONSUMER
        )
        span_ctx = span.get_span_context()
        traceparent = format_traceparent(span_ctx.trace_id, span_ctx.span_id, int(span_ctx.trace_flags))
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
            decision, reasons, policy, verdict = self._decide(intent, now, started - queued_s)

        decision_id = f"{_ids.getrandbits(128):032x}"
        intent_dump = intent.model_dump(mode="json", exclude_none=True) if intent is not None else None
        if intent is not None and intent.timestamp is not None and intent_dump is not None:
            intent_dump["timestamp"] = intent.timestamp.isoformat()  # "+00:00", readable by any fromisoformat
        signal: Outbound | None = None
        promotion: bytes | None = None
        if decision == "APPROVED":
            assert intent is not None and intent_dump is not None and policy is not None and verdict is not None
            signal = self._promote(intent, intent_dump, policy, verdict, decision_id, now, traceparent)
            promotion = (
                PromotionNotice(
                    gate_id=self._settings.gate_id,
                    ts=now,
                    strategy_id=intent.strategy_id,
                    symbol=intent.symbol,
                    action=intent.action,
                    intent_id=intent.intent_id,
                    notional_usd=verdict.notional_usd,
                    policy_version=policy.version,
                )
                .model_dump_json()
                .encode()
            )
            self._counters.approved += 1
        elif decision == "REJECTED":
            self._counters.rejected += 1
        else:
            self._counters.retry_safe += 1
        signal_subject = signal.subject if signal is not None else None

        trace_id = f"{span_ctx.trace_id:032x}"
        field_errors = invalid.field_errors if invalid is not None else None
        # Outbound models are built from values this module produced and typed itself: construct, do not re-validate
        # (validating `intent` again would copy the whole dict on the hot path). Tests parse every one back.
        decision_data = DecisionData.model_construct(
            decision=decision,
            decision_id=decision_id,
            intent_id=intent.intent_id if intent is not None else _raw_intent_id(body),
            policy_version=policy.version if policy is not None else None,
            reasons=list(reasons),
            signal_subject=signal_subject,
            field_errors=field_errors,
        )
        reply = None
        if reply_to:
            error = None
            if decision != "APPROVED":
                error = ErrorBody(code=reasons[0].code, message="; ".join(r.message for r in reasons))
            envelope = DecisionEnvelope.model_construct(
                success=decision == "APPROVED", data=decision_data, trace_id=trace_id, error=error
            )
            reply = Outbound(reply_to, envelope.model_dump_json().encode(), {"traceparent": traceparent})

        audit = AuditEvent.model_construct(
            decision_id=decision_id,
            ts=datetime.fromtimestamp(now, UTC),
            gate_id=self._settings.gate_id,
            subject=subject,
            strategy_id=intent.strategy_id if intent is not None else _raw_str(body, "strategy_id"),
            symbol=intent.symbol if intent is not None else _raw_str(body, "symbol"),
            action=intent.action if intent is not None else _raw_str(body, "action"),
            intent_id=decision_data.intent_id,
            decision=decision,
            reasons=list(reasons),
            field_errors=field_errors,
            policy_version=decision_data.policy_version,
            policy_checksum=policy.checksum if policy is not None else None,
            trace_id=trace_id,
            span_id=f"{span_ctx.span_id:016x}",
            traceparent=traceparent,
            latency_us=int((time.perf_counter() - started + queued_s) * 1e6),
            signal_subject=signal_subject,
            intent=redact(intent_dump) if intent_dump is not None else None,
            raw_intent=_raw_for_audit(data, body) if intent is None else None,
            state={"trading_state": verdict.limits.trading_state.value} if verdict is not None else None,
        )
        span.set_attributes({"cio.decision": decision, "cio.decision_id": decision_id})
        if intent is not None:
            span.set_attributes({"cio.strategy_id": intent.strategy_id, "cio.symbol": intent.symbol})
        if decision != "APPROVED":
            span.set_attribute("cio.reason_codes", [r.code for r in reasons])
            if decision == "RETRY_SAFE":
                span.set_status(Status(StatusCode.ERROR, reasons[0].code))
        span.end()
        return Outcome(
            decision=decision,
            decision_id=decision_id,
            reply=reply,
            signal=signal,
            promotion=promotion,
            audit_subject=f"{self._settings.audit_subject_prefix}.{_SUBJECT_FOR[decision]}",
            audit_payload=audit.model_dump_json().encode(),
        )

    def _parse(self, data: bytes) -> tuple[Any, _Invalid | None]:
        if len(data) > self._settings.max_intent_bytes:
            return None, _Invalid(
                f"payload is {len(data)} bytes; the limit is {self._settings.max_intent_bytes}",
                [FieldError(field="(body)", message="payload too large", type="too_large")],
            )
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
        self, intent: Intent, now: float, received: float
    ) -> tuple[DecisionKind, tuple[Reason, ...], CompiledPolicy | None, Verdict | None]:
        """Fail closed: no usable policy, an error or a blown budget is RETRY_SAFE, never an approval."""
        budget_ms = self._settings.decision_budget_ms
        if time.perf_counter() - received > self._budget_s:
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
        monotonic_now = time.monotonic()
        policy = self._policy_sync.usable(monotonic_now)
        if policy is None:
            if self._policy_sync.is_stale(monotonic_now):
                reason = Reason(
                    code=ReasonCode.POLICY_STALE,
                    message="the gate could not confirm its policy with Redis recently; retry",
                )
            else:
                reason = Reason(code=ReasonCode.NO_POLICY, message="the gate has no active policy; retry")
            return "RETRY_SAFE", (reason,), None, None
        try:
            verdict = evaluate(intent, policy, self._state, now)
        except Exception:
            log.exception("decision failed for %s/%s", intent.strategy_id, intent.symbol)
            reason = Reason(code=ReasonCode.INTERNAL_ERROR, message="internal error while deciding; retry")
            return "RETRY_SAFE", (reason,), policy, None
        if time.perf_counter() - received > self._budget_s:
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
        stamp = CioStamp(
            decision_id=decision_id,
            policy_version=policy.version,
            approved_at=datetime.fromtimestamp(now, UTC),
            original_source=intent.source,
        )
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


def _raw_intent_id(body: Any) -> str | None:
    for key in ("signal_id", "id", "client_order_id"):
        found = _raw_str(body, key)
        if found:
            return found
    return None


def _raw_for_audit(raw: bytes, body: Any) -> str:
    """What arrived, for the audit trail of a VAL_ERR: redacted, and truncated to a few KB."""
    if isinstance(body, dict | list):
        text = orjson.dumps(redact(body)).decode()
    else:
        text = redact_text(raw[: _RAW_AUDIT_LIMIT * 2].decode("utf-8", errors="replace"))
    return text[:_RAW_AUDIT_LIMIT]
