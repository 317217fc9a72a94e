"""Shadow mode in process: what a shadow gate's pipeline audits, and how the report matches its decisions with the
serving CIO's promotions (docs/deploy.md, "Shadow mode")."""

from datetime import UTC, datetime, timedelta

import orjson

from audit.records import DecisionRecord
from audit.shadow_report import (
    BOTH,
    NEITHER,
    SERVING_ONLY_UNDECIDED,
    SHADOW_ONLY,
    UNSEEN,
    Promoted,
    compare,
    promoted_of,
    render,
)
from cio_kernel.contracts.audit_event import AuditEvent
from cio_kernel.contracts.heartbeat import GateCounters
from gate.config import GateSettings
from gate.decision.state import GateState
from gate.runtime.pipeline import DecisionPipeline, FixedPolicy, Outcome
from gate.runtime.shadow import shadowed
from gate.runtime.telemetry import DecisionTracer
from tests.factories import NOW, compile_spec, intent_body, make_spec

AT = datetime.fromtimestamp(NOW, UTC)


class _Clock:
    def time(self) -> float:
        return NOW

    def monotonic(self) -> float:
        return 1_000.0


def _pipeline(shadow: bool, policy: bool = True) -> DecisionPipeline:
    settings = GateSettings(gate_id="shadow-1" if shadow else "serving-1", gate_shadow=shadow)
    source = FixedPolicy(compile_spec(make_spec(min_confidence=0.7)) if policy else None)
    return DecisionPipeline(settings, source, GateState(), DecisionTracer(None), GateCounters(), _Clock())


def _record(outcome: Outcome) -> DecisionRecord:
    return DecisionRecord.from_message(outcome.audit_subject, outcome.audit_payload, None)


def test_a_shadow_gate_audits_its_decisions_marked_and_apart_and_keeps_nothing_else():
    serving = _pipeline(shadow=False).process("cio.nurse.audit", orjson.dumps(intent_body()), None, "_INBOX.r")
    assert "shadow" not in orjson.loads(serving.audit_payload)  # a serving gate's records are as they always were
    assert serving.audit_subject == "cio.audit.decision.approved" and serving.signal is not None

    pipeline = _pipeline(shadow=True)
    outcome = pipeline.process("cio.nurse.audit", orjson.dumps(intent_body()), None, "_INBOX.r")
    event = AuditEvent.model_validate_json(outcome.audit_payload)
    assert event.shadow is True and event.decision == "APPROVED"
    assert outcome.audit_subject == "cio.audit.decision.shadow.approved"
    assert orjson.loads(event.model_dump_json()) == orjson.loads(outcome.audit_payload)  # the model says the same
    kept = shadowed(outcome)
    assert (kept.reply, kept.signal, kept.promotion, kept.decision_subject) == (None, None, None, "")
    assert kept.audit_payload == outcome.audit_payload
    # What it would have promoted still counts in its own state: the same intent again is a duplicate.
    again = pipeline.process("cio.nurse.audit", orjson.dumps(intent_body()), None, "_INBOX.r")
    assert again.decision == "REJECTED"
    shed = pipeline.shed("cio.nurse.audit", b"{}", None, None, 1.0)  # unparsed answers are marked too
    assert shed.audit_subject == "cio.audit.decision.shadow.retry_safe"
    assert AuditEvent.model_validate_json(shed.audit_payload).shadow is True


def test_the_report_matches_by_id_or_by_time_whatever_the_spelling_and_counts_what_it_cannot_match():
    shadow, without_policy = _pipeline(shadow=True), _pipeline(shadow=True, policy=False)

    def decide(pipeline: DecisionPipeline = shadow, **fields: object) -> DecisionRecord:
        return _record(pipeline.process("cio.nurse.audit", orjson.dumps(intent_body(**fields)), None, None))

    decisions = [
        # No producer id: matched on strategy, symbol, action and the producer's time, in the serving CIO's spelling.
        decide(signal_id=None, strategy_id="Momentum One", timestamp=AT.isoformat()),
        # RETRY_SAFE first (no policy yet), approved on the strategy's retry: one intent, approved.
        decide(without_policy, signal_id="s-2"),
        decide(signal_id="s-2"),
        decide(signal_id="s-3", symbol="ETHUSDT"),  # approved, never promoted
        decide(without_policy, signal_id="s-4", symbol="SOLUSDT"),  # undecided, promoted
        decide(signal_id="s-6", symbol="XRPUSDT", confidence=0.5),  # rejected, never promoted
        _record(shadow.shed("cio.nurse.audit", b"{}", None, None, 1.0)),  # unparsed: nothing to match on
    ]

    def signal(seconds: float = 0.0, **fields: object) -> Promoted:
        body = {**intent_body(**fields), "source": "petrosa-cio"}
        return promoted_of(orjson.dumps(body), AT + timedelta(seconds=seconds))

    promoted = [
        signal(signal_id=None, strategy_id="momentum_one", timestamp=int(NOW * 1000)),
        signal(signal_id="s-2"),
        signal(signal_id="s-2"),  # seen twice: one promotion
        signal(signal_id="s-4", symbol="SOLUSDT"),
        signal(signal_id="s-9"),  # the shadow never saw it
        signal(-3600, signal_id="s-10"),  # before the window, and no shadow decision meets it: not counted
        promoted_of(b"not an intent", AT),
    ]
    report = compare(decisions, promoted, AT - timedelta(minutes=5), AT)
    assert dict(report.outcomes) == {BOTH: 2, SHADOW_ONLY: 1, SERVING_ONLY_UNDECIDED: 1, NEITHER: 1, UNSEEN: 1}
    assert report.shadow_decisions == 7 and report.unmatched_decisions == 1
    assert report.promoted_signals == 4 and report.unreadable_signals == 1
    text = render(report)
    assert text.index("shadow would promote") < text.index("both promote")
    assert "intent_id=s-9" in text and "intent_id=s-3" in text and "NO_POLICY" in text
