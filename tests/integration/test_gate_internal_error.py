"""A request the gate fails on around its decision is answered RETRY_SAFE/GATE_INTERNAL_ERROR and audited, nothing
of its decision leaves the gate, and the next intent is decided as ever (real NATS, JetStream and Redis)."""

import dataclasses
from typing import Any

import pytest

from cio_kernel.reason_codes import ReasonCode as C
from gate.runtime.pipeline import DecisionPipeline, Outcome
from tests.factories import live_intent_body, make_spec
from tests.integration.helpers import activate, audit_events, collect, request, wait_for_policy

RAISES = "fail-before-deciding"
UNSENDABLE = "fail-after-approving"


class _FailingPipeline(DecisionPipeline):
    """The gate's own pipeline, but for intents whose id names a failure: one raises before anything is decided;
    the other is approved (its promotion recorded, its signal built) and then carries a peer notice the writer
    cannot encode, so handing its messages over fails after the signal was held and the audit event staged."""

    def process(self, subject: str, data: bytes, *args: Any, **kwargs: Any) -> Outcome:
        if RAISES.encode() in data:
            raise RuntimeError("a step of the pipeline failed")
        outcome = super().process(subject, data, *args, **kwargs)
        if UNSENDABLE.encode() in data:
            assert outcome.decision == "APPROVED" and outcome.signal is not None
            return dataclasses.replace(outcome, promotion="not bytes")  # type: ignore[arg-type]
        return outcome


@pytest.fixture
async def failing_gate(make_gate, redis, nc):
    gate = await make_gate(pipeline_type=_FailingPipeline)
    await activate(redis, nc, make_spec(min_confidence=0.5), 1)
    await wait_for_policy(gate, 1)
    return gate


@pytest.mark.parametrize("failure", [RAISES, UNSENDABLE])
async def test_a_failure_is_answered_retry_safe_audited_and_never_promoted(failing_gate, nc, failure):
    signals = await collect(nc, "signals.trading.*")
    promotions = await collect(nc, "cio.gate.promotion")

    envelope, _ = await request(nc, live_intent_body(signal_id=failure))
    assert envelope.success is False
    assert envelope.data.decision == "RETRY_SAFE"
    assert envelope.error.code == C.GATE_INTERNAL_ERROR
    [reason] = envelope.data.reasons
    assert reason.code == C.GATE_INTERNAL_ERROR
    assert "no trade was promoted" in reason.message and "retrying is safe" in reason.message
    assert envelope.data.signal_subject is None

    after, _ = await request(nc, live_intent_body(signal_id="the-next-one"))
    assert after.data.decision == "APPROVED" and after.data.reasons == []
    # The gate sends a signal before its reply: once the second reply is in, every signal sent is here.
    [signal] = await signals.wait_for(1)
    assert b"the-next-one" in signal.data
    [promotion] = await promotions.wait_for(1)
    assert b"the-next-one" in promotion.data

    # In the order spooled: anything of the failed intent's own decision would come before the next one's event.
    failed, approved = await audit_events(nc, expected=2)
    assert failed.event.decision_id == envelope.data.decision_id
    assert failed.event.decision == "RETRY_SAFE"
    assert [r.code for r in failed.event.reasons] == [C.GATE_INTERNAL_ERROR]
    assert failed.event.signal_subject is None
    assert approved.event.decision_id == after.data.decision_id and approved.event.decision == "APPROVED"
    assert failing_gate.intake.failures == 1
    assert failing_gate.counters.retry_safe == 1
