"""The break glass as the runbook (docs/canary.md) tells the on-call engineer to run it: `python -m canary halt`
with the `control` identity and the policy signing key, against the shipped access table rendered into a real
nats-server and Valkey, and real gate processes under the `gate` identity. It must halt every gate with Redis
stopped, persist the halt with Redis up, report success only when every gate heard confirms, and fail loudly
(non-zero) with an identity NATS refuses or a key the gates do not trust, while the gates keep trading."""

import asyncio
import base64
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from cio_kernel.policy.document import ACTIVE_POLICY_KEY, PolicyDocument
from cio_kernel.policy.signing import PolicySigner, PolicyVerifier
from deploy import access
from tests.factories import TEST_SIGNER, live_intent_body, make_spec
from tests.integration.helpers import activate, request, wait_until
from tests.secured_stack import Secured

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
GATES = ("gate-a", "gate-b")


class Fleet:
    """Everything the test needs around the gates: an observer (the canary identity, which may hear heartbeats),
    the control plane's Redis and NATS clients, a strategy, and each gate's latest heartbeat."""

    def __init__(self, stack: Secured) -> None:
        self.stack = stack
        self.beats: dict[str, dict] = {}
        self.sent = 0

    async def start(self, version: int) -> "Fleet":
        self.observer = await self.stack.connect("canary")
        self.control = await self.stack.connect("control")
        self.strategy = await self.stack.connect("strategy")
        self.control_redis = aioredis.Redis.from_url(self.stack.redis_url("control"))
        await self.observer.subscribe("cio.gate.heartbeat", cb=self._on_beat)
        await activate(self.control_redis, self.control, make_spec(max_order_notional_usd=10_000), version)
        for gate_id in GATES:
            await self.stack.spawn_gate(gate_id, self.observer)
        await wait_until(lambda: all(self.version(g) == version for g in GATES), 20, f"both gates on v{version}")
        return self

    async def _on_beat(self, msg) -> None:
        beat = orjson.loads(msg.data)
        self.beats[beat["gate_id"]] = beat

    def version(self, gate_id: str) -> int | None:
        return self.beats.get(gate_id, {}).get("policy_version")

    def states(self) -> dict[str, str | None]:
        return {gate_id: self.beats[gate_id]["trading_state"] for gate_id in GATES}

    async def decide_opening_intents(self, count: int = 6) -> list[str]:
        """Reason codes (or APPROVED) for `count` fresh opening intents; the queue group spreads them over the
        gates."""
        outcomes = []
        for _ in range(count):
            self.sent += 1
            envelope, _ = await request(self.strategy, live_intent_body(signal_id=f"sig-{self.sent}"))
            data = envelope.data
            outcomes.append("APPROVED" if data.decision == "APPROVED" else data.reasons[0].code)
        return outcomes

    async def close(self) -> None:
        await self.control_redis.aclose()
        for client in (self.observer, self.control, self.strategy):
            await client.close()


@pytest.fixture
async def fleet(secured: Secured) -> AsyncIterator[Fleet]:
    running = await Fleet(secured).start(version=4)
    yield running
    await running.close()


@pytest.fixture
def policy_key(tmp_path: Path) -> Path:
    """The break-glass copy of the control plane's policy signing key (the gates trust its public half)."""
    key = tmp_path / "policy-signing.key"
    key.write_text(base64.b64encode(TEST_SIGNER.private_key.private_bytes_raw()).decode())
    return key


async def break_glass(
    stack: Secured, key: Path, *extra: str, identity: str = "control", confirm: str = "60"
) -> tuple[int, str]:
    """The runbook's command line, as the on-call engineer types it."""
    argv = [
        "--nats-url",
        stack.nats_url(identity),
        "--inbox-prefix",
        access.NATS_ROLES[identity].inbox_prefix,
        "halt",
        "--redis-url",
        stack.redis_url("control"),
        "--signing-key",
        str(key),
        "--operator",
        "alice",
        "--reason",
        "cluster unreachable",
        "--listen",
        "1",  # the test gates beat every 0.2 s
        "--confirm-timeout",
        confirm,
        *extra,
    ]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "canary", *argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    text = out.decode()
    assert stack.passwords[f"nats:{identity}"] not in text and stack.passwords["redis:control"] not in text
    return proc.returncode or 0, text


async def test_with_redis_stopped_the_runbook_halts_every_gate_and_says_who_confirmed(secured, fleet, policy_key):
    assert set(await fleet.decide_opening_intents(2)) == {"APPROVED"}
    secured.redis.stop()

    code, out = await break_glass(secured, policy_key)

    assert code == 0, out
    assert "BREAK GLASS HALTED: 2/2 gate(s) heard confirm halted at v5 (gate-a, gate-b)" in out, out
    assert "Redis NOT written" in out and "set the kill switch there" in out
    # What the tool claims is what the gates say and do: both beat `halted`, holding the notice for v5.
    await wait_until(lambda: set(fleet.states().values()) == {"halted"}, 10, "both heartbeats halted")
    assert {fleet.beats[g]["notice_version"] for g in GATES} == {5}
    assert set(await fleet.decide_opening_intents()) == {"TRADING_HALTED"}


async def test_with_redis_up_the_halt_is_persisted_signed_and_confirmed(secured, fleet, policy_key):
    code, out = await break_glass(secured, policy_key)

    assert code == 0, out
    assert "Redis: v5 (halted) written" in out and "2/2 gate(s) heard confirm halted at v5" in out, out
    document = PolicyDocument.model_validate_json(await fleet.control_redis.get(ACTIVE_POLICY_KEY))
    assert document.version == 5 and document.spec.global_rules.trading_state == "halted"
    assert document.spec.global_rules.max_order_notional_usd == 10_000  # nothing else changed
    assert document.activated_by == "break-glass:alice: cluster unreachable"
    assert document.checksum_matches() and document.verified_by(PolicyVerifier([TEST_SIGNER.public_raw]))
    await wait_until(lambda: {fleet.version(g) for g in GATES} == {5}, 10, "both gates on v5")
    assert set(await fleet.decide_opening_intents()) == {"TRADING_HALTED"}


@pytest.mark.parametrize(
    ("identity", "refused"),
    [
        ("canary", "refused this identity's publish on cio.trading.state"),  # may hear heartbeats, not halt
        ("marketdata", "refused this identity a subscription to cio.gate.heartbeat"),  # could not even confirm
    ],
)
async def test_another_identity_fails_loudly_and_the_gates_keep_trading(secured, fleet, policy_key, identity, refused):
    secured.redis.stop()

    code, out = await break_glass(secured, policy_key, identity=identity)

    assert code == 1, out
    assert "BREAK GLASS FAILED" in out and refused in out and "`control` identity" in out, out
    assert "HALTED" not in out.replace("FAILED", "")
    assert set(await fleet.decide_opening_intents()) == {"APPROVED"}
    assert set(fleet.states().values()) == {"active"}


async def test_a_key_the_gates_do_not_trust_halts_nothing_and_is_not_reported_as_a_halt(secured, fleet, tmp_path):
    forged = tmp_path / "not-the-policy-key"
    forged.write_text(base64.b64encode(PolicySigner.generate().private_key.private_bytes_raw()).decode())

    code, out = await break_glass(secured, forged, confirm="5")

    assert code == 4, out
    assert "BREAK GLASS UNCONFIRMED: 0/2 gate(s) heard confirm halted at v5" in out, out
    assert "Redis holds a policy this key did not sign" in out  # so Redis was left alone
    assert "gate-a: active at v4" in out and "gate-b: active at v4" in out
    assert "REFUSED the notice" in out  # the gates' own counters say why
    assert PolicyDocument.model_validate_json(await fleet.control_redis.get(ACTIVE_POLICY_KEY)).version == 4
    assert set(await fleet.decide_opening_intents()) == {"APPROVED"}


async def test_one_gate_that_does_not_confirm_makes_it_a_failure(secured, fleet, policy_key):
    # A third gate deployed with another policy key: it runs no policy (every intent RETRY_SAFE) and refuses the
    # notice. Two of three halted is not "halted".
    other_key = base64.b64encode(PolicySigner.generate().public_raw).decode()
    await secured.spawn_gate("gate-c", fleet.observer, CIO_POLICY_PUBLIC_KEY=other_key)

    code, out = await break_glass(secured, policy_key, confirm="5")

    assert code == 4, out
    assert "BREAK GLASS UNCONFIRMED: 2/3 gate(s) heard confirm halted at v5 (gate-a, gate-b)" in out, out
    assert "NOT confirmed by: gate-c: no policy (it runs no policy, so it approves nothing)" in out
    assert "REFUSED the notice" in out
    await wait_until(lambda: set(fleet.states().values()) == {"halted"}, 10, "the two good gates halted")


async def test_with_no_gate_beating_and_redis_stopped_nothing_is_claimed(secured, policy_key):
    secured.redis.stop()

    code, out = await break_glass(secured, policy_key, confirm="1")

    assert code == 1, out
    assert "heard 0 gate(s)" in out and "BREAK GLASS FAILED: no gate is beating and Redis was not written" in out


async def test_after_an_older_policy_was_put_back_the_halt_is_a_notice_above_the_gates_floor(
    secured, fleet, policy_key
):
    """A Redis `control` holder wrote v4 back over v7: nothing is built on v4 (a v5 would be below every gate's
    floor, or bring v4's spec back); the notice is numbered above the floor the gates report, and they confirm."""
    old = await fleet.control_redis.get(ACTIVE_POLICY_KEY)
    await activate(fleet.control_redis, fleet.control, make_spec(max_order_notional_usd=5_000), 7)
    await wait_until(lambda: {fleet.version(g) for g in GATES} == {7}, 20, "both gates on v7")
    await fleet.control_redis.set(ACTIVE_POLICY_KEY, old)  # the replay

    code, out = await break_glass(secured, policy_key)

    assert code == 0, out
    assert "the gates know v7 was activated" in out and "2/2 gate(s) heard confirm halted at v8" in out, out
    assert PolicyDocument.model_validate_json(await fleet.control_redis.get(ACTIVE_POLICY_KEY)).version == 4
    assert set(await fleet.decide_opening_intents()) == {"TRADING_HALTED"}
