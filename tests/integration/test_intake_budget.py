"""The gate's own budget on the shipped permissions: an intent built to be expensive (nested hundreds of levels,
thousands of keys, tens of kilobytes of secret-looking text) is refused VAL_ERR before it is parsed, answered
and audited exactly once; a strategy flooding the gate is shed with STRATEGY_OVER_BUDGET while another
strategy's intents are still decided. The attacker is a strategy with the shared `strategy` identity; the
victim publishes with its own; the audit trail is read with the audit store's identity. The gate's monotonic
clock stands still, so no bucket refills during a test: every count below is exact on any machine."""

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import nats.errors
import orjson
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from cio_kernel.contracts.audit_event import AuditEvent
from cio_kernel.contracts.envelope import DecisionEnvelope
from cio_kernel.nats_flush import flush_ordered
from cio_kernel.reason_codes import ReasonCode as C
from deploy import access
from gate.config import GateSettings
from gate.runtime.fair_share import intent_cost
from gate.runtime.service import Gate
from tests.factories import TEST_PUBLIC_KEY, live_intent_body, make_spec, write_audit_signing_key
from tests.integration.helpers import ManualClock, activate, request, wait_for_policy, wait_until
from tests.secured_stack import Secured

BURST_INTENTS = 10


def _payload(**overrides: object) -> bytes:
    return orjson.dumps(live_intent_body(**overrides))


@pytest.fixture
async def start_gate(secured: Secured, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Gate]]]:
    started: list[Gate] = []
    control_redis = aioredis.Redis.from_url(secured.redis_url("control"))

    async def start(**overrides: object) -> Gate:
        settings = GateSettings(
            nats_url=secured.nats_url("gate"),
            redis_url=secured.redis_url("gate"),
            nats_inbox_prefix=access.NATS_ROLES["gate"].inbox_prefix,
            gate_id="budget-gate",
            audit_spool_dir=tmp_path / "spool",
            policy_public_key=TEST_PUBLIC_KEY,
            policy_floor_wait_s=0.0,
            audit_signing_key_file=write_audit_signing_key(tmp_path),
            **overrides,
        )
        gate = Gate(settings, clock=ManualClock(), run_loops=False)
        await asyncio.wait_for(gate.start(), 20)
        started.append(gate)
        control = await secured.connect("control")
        await activate(control_redis, control, make_spec(strategies={"momentum_pulse": {"own_identity": True}}), 1)
        await wait_for_policy(gate, 1)
        return gate

    yield start
    await control_redis.aclose()
    for gate in started:
        await gate.stop()
    await secured.close_clients()


async def _audit_events(auditor: NATS, expected: int) -> list[AuditEvent]:
    """What the audit stream holds, read the way the audit store reads it (a pull consumer of its identity)."""
    sub = await auditor.jetstream().pull_subscribe(
        "cio.audit.decision.>",
        durable="budget-test",
        stream="CIO_AUDIT",
        config=ConsumerConfig(
            durable_name="budget-test", ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL
        ),
    )
    events: list[AuditEvent] = []
    while len(events) < expected:
        for msg in await sub.fetch(expected - len(events), timeout=5):
            events.append(AuditEvent.model_validate_json(msg.data))
            await msg.ack()
    with contextlib.suppress(nats.errors.TimeoutError):  # nothing more may follow: one record per intent
        extra = await sub.fetch(1, timeout=0.5)
        events.extend(AuditEvent.model_validate_json(msg.data) for msg in extra)
    return events


def _nested(depth: int) -> bytes:
    body = live_intent_body(signal_id="deep")
    body.pop("metadata", None)
    head = orjson.dumps(body)[:-1]
    return head + b',"metadata":' + b'{"a":' * depth + b"{}" + b"}" * depth + b"}"


EXPENSIVE = {
    "nested 300 levels": (lambda: _nested(300), "too_deep", "payload nests 302 levels deep; the limit is 32"),
    "5000 keys": (lambda: _payload(metadata={f"k{i}": i for i in range(5000)}), "too_many_members", "keys"),
    "40 KB of secret-looking text": (lambda: _payload(rationale="token" * 8000), "string_too_long", "40000 bytes"),
    # Each escaped quote in a string left open once started a new search to the end: seconds per intent.
    "a string left open, of 30,000 escaped quotes": (
        lambda: _payload()[:-1] + b',"rationale":"' + b'\\"' * 30_000,
        "string_too_long",
        "60000 bytes",
    ),
}


async def test_expensive_intents_are_refused_answered_and_audited_once(secured, start_gate):
    budget_gate = await start_gate()
    strategy = await secured.connect("strategy")
    auditor = await secured.connect("audit")
    for name, (build, kind, message) in EXPENSIVE.items():
        envelope, _ = await request(strategy, build())
        assert envelope.data.decision == "REJECTED" and envelope.error.code == C.VAL_ERR, name
        [error] = envelope.data.field_errors
        assert error.field == "(body)" and error.type == kind and message in error.message, name
        assert message in envelope.data.reasons[0].message, name  # the reason says why, in words
    events = await _audit_events(auditor, len(EXPENSIVE))
    assert len(events) == len(EXPENSIVE)  # exactly one each: none lost, none doubled
    for event, (name, (_, kind, _)) in zip(events, EXPENSIVE.items(), strict=True):
        assert event.decision == "REJECTED" and [r.code for r in event.reasons] == [C.VAL_ERR], name
        assert event.field_errors is not None and event.field_errors[0].type == kind, name
        assert event.intent is None and event.raw_intent is not None and len(event.raw_intent) <= 4096, name
    assert budget_gate.counters.invalid == len(EXPENSIVE)
    envelope, _ = await request(strategy, live_intent_body(signal_id="after"))
    assert envelope.data.decision == "APPROVED"  # the gate kept serving


async def test_a_flooding_strategy_is_shed_while_another_is_still_decided(secured, start_gate):
    # A burst of exactly BURST_INTENTS normal intents per strategy, and a refill no test outlives (the gate's
    # largest intent must fit in a burst: it is never refused for its size alone).
    cost = intent_cost(len(_payload(strategy_id="momentum_pulse", signal_id="flood-000")))
    budget_gate = await start_gate(
        strategy_budget_per_s=1e-6,
        strategy_budget_burst=BURST_INTENTS * cost,
        max_intent_bytes=2048,
        strategy_budget_open_share=2.0,  # room for both keys the flooder reaches: each key's own bucket is tested
    )
    flooder = await secured.connect("strategy")
    victim = await secured.connect(access.strategy_identity("momentum_pulse").name)
    auditor = await secured.connect("audit")
    replies: list[DecisionEnvelope] = []
    inbox = flooder.new_inbox()

    async def keep(msg: Msg) -> None:
        replies.append(DecisionEnvelope.model_validate_json(msg.data))

    await flooder.subscribe(f"{inbox}.*", cb=keep)
    flood = 6 * BURST_INTENTS
    # The flooder publishes under its own name and under the victim's (on a shared subject, where it may claim
    # any id): neither spends the share of the strategy that publishes on its own subject.
    for i in range(flood):
        subject, strategy_id = (
            ("cio.intent.trading.momentum_1", "momentum-1") if i % 2 else ("cio.nurse.audit", "momentum_pulse")
        )
        await flooder.publish(
            subject, _payload(strategy_id=strategy_id, signal_id=f"flood-{i:03}"), reply=f"{inbox}.{i}"
        )
    await flush_ordered(flooder)
    decided = []
    for i in range(BURST_INTENTS):  # its whole share, while the flood is queued or just answered
        envelope, _ = await request(
            victim,
            live_intent_body(
                strategy_id="momentum_pulse", signal_id=f"victim-{i}", symbol=("BTCUSDT", "ETHUSDT")[i % 2]
            ),
            "cio.intent.trading.momentum_pulse",
        )
        decided.append(envelope)
    await wait_until(lambda: len(replies) == flood, what="every flooded intent answered")

    codes = Counter(envelope.data.reasons[0].code if envelope.data.reasons else "none" for envelope in replies)
    shed = codes[C.STRATEGY_OVER_BUDGET]
    # Each of the two buckets the flooder reached paid for exactly one burst; the rest was shed, unparsed.
    assert shed == flood - 2 * BURST_INTENTS, codes
    assert all(e.data.decision == "RETRY_SAFE" for e in replies if e.data.reasons[:1] == [_over_budget(e)])
    # What was decided was decided on its merits: its own name approved, the victim's name refused off its subject.
    assert codes[C.IDENTITY_UNVERIFIED] == BURST_INTENTS, codes
    assert sum(e.data.decision == "APPROVED" for e in replies) == BURST_INTENTS
    assert [e.data.decision for e in decided] == ["APPROVED"] * len(decided), [e.data.reasons for e in decided]
    counters = budget_gate.counters
    assert counters.over_budget == shed
    assert counters.received == flood + len(decided)
    events = await _audit_events(auditor, flood + len(decided))
    assert len(events) == flood + len(decided)
    over = [e for e in events if [x.code for x in e.reasons] == [C.STRATEGY_OVER_BUDGET]]
    assert len(over) == shed and all(e.decision == "RETRY_SAFE" and e.intent is None for e in over)


def _over_budget(envelope: DecisionEnvelope) -> object:
    return next((r for r in envelope.data.reasons if r.code == C.STRATEGY_OVER_BUDGET), None)


async def test_a_new_claimed_id_per_intent_neither_escapes_the_share_nor_crowds_out_an_own_identity(
    secured, start_gate
):
    # The shared identity changes the strategy it claims (and the subject token it publishes on) with every
    # intent, more of them than the gate keeps buckets for. What all those keys spend together is the open share
    # (1.5 bursts); the strategy with an identity of its own, arriving only after the flood, keeps its whole share.
    cost = intent_cost(len(_payload(strategy_id="rot-00000", signal_id="rot-00000")))
    budget_gate = await start_gate(
        strategy_budget_per_s=1e-6, strategy_budget_burst=BURST_INTENTS * cost, max_intent_bytes=2048
    )
    flooder = await secured.connect("strategy")
    victim = await secured.connect(access.strategy_identity("momentum_pulse").name)
    answered = 0
    shed = 0
    inbox = flooder.new_inbox()

    async def keep(msg: Msg) -> None:
        nonlocal answered, shed
        answered += 1
        shed += DecisionEnvelope.model_validate_json(msg.data).error.code == C.STRATEGY_OVER_BUDGET

    await flooder.subscribe(f"{inbox}.*", cb=keep)
    flood = 4096 + 4 * BURST_INTENTS  # more keys than the table holds
    for i in range(flood):
        name = f"rot-{i:05}"
        subject = "cio.intent.trading" if i % 2 else f"cio.intent.trading.{name.replace('-', '_')}"
        await flooder.publish(subject, _payload(strategy_id=name, signal_id=name), reply=f"{inbox}.{i}")
    await flush_ordered(flooder)
    await wait_until(lambda: answered == flood, 60, what="every flooded intent answered")
    decided = []
    for i in range(BURST_INTENTS):
        envelope, _ = await request(
            victim,
            live_intent_body(strategy_id="momentum_pulse", signal_id=f"v-{i}", symbol=("BTCUSDT", "ETHUSDT")[i % 2]),
            "cio.intent.trading.momentum_pulse",
        )
        decided.append(envelope)

    assert flood - shed == int(1.5 * BURST_INTENTS), shed  # the open share, however many ids it claimed
    assert [e.data.decision for e in decided] == ["APPROVED"] * BURST_INTENTS, [e.data.reasons for e in decided]
    assert budget_gate.counters.over_budget == shed
    assert budget_gate.counters.received == flood + BURST_INTENTS


async def test_another_spelling_of_a_strategys_own_subject_does_not_spend_its_share(secured, start_gate):
    # `cio.intent.trading.Momentum-Pulse` folds to the key `momentum_pulse`, but NATS denies the shared identity
    # only the exact subject `cio.intent.trading.momentum_pulse`: the spelling is the shared identity's to use.
    cost = intent_cost(len(_payload(strategy_id="momentum_pulse", signal_id="spell-00")))
    budget_gate = await start_gate(
        strategy_budget_per_s=1e-6, strategy_budget_burst=BURST_INTENTS * cost, max_intent_bytes=2048
    )
    flooder = await secured.connect("strategy")
    victim = await secured.connect(access.strategy_identity("momentum_pulse").name)
    flood = []
    for i, spelling in enumerate(["Momentum-Pulse", "MOMENTUM_PULSE", "momentum-pulse", "Momentum.Pulse"] * 5):
        envelope, _ = await request(
            flooder, _payload(strategy_id="momentum_pulse", signal_id=f"spell-{i:02}"), f"cio.intent.trading.{spelling}"
        )
        flood.append(envelope)
    assert all(e.data.decision != "APPROVED" for e in flood)  # never decided in the owner's name off its subject
    decided = []
    for i in range(BURST_INTENTS):
        envelope, _ = await request(
            victim,
            live_intent_body(strategy_id="momentum_pulse", signal_id=f"own-{i}", symbol=("BTCUSDT", "ETHUSDT")[i % 2]),
            "cio.intent.trading.momentum_pulse",
        )
        decided.append(envelope)
    assert [e.data.decision for e in decided] == ["APPROVED"] * BURST_INTENTS, [e.data.reasons for e in decided]
    assert budget_gate.counters.over_budget == sum(
        e.error is not None and e.error.code == C.STRATEGY_OVER_BUDGET for e in flood
    )
