"""A gate and the signed `cio.trading.state` notice, as the break glass relies on it: the heartbeat says which
notice version the gate holds (so a sender can confirm), a gate without a policy still reports the halt it holds,
and a later notice of the same state extends the hold until a policy of that version arrives."""

from datetime import UTC, datetime

from cio_kernel.contracts.trading_state_notice import TradingStateNotice
from cio_kernel.nats_flush import flush_ordered
from cio_kernel.policy.spec import TradingState
from cio_kernel.reason_codes import ReasonCode as C
from tests.factories import TEST_SIGNER, live_intent_body, make_spec
from tests.integration.helpers import activate, request, wait_for_policy, wait_until


async def send_halt(nc, version: int) -> None:
    notice = TradingStateNotice(
        version=version,
        scope="global",
        key="",
        state=TradingState.HALTED,
        reason="drill",
        by="tests",
        at=datetime.now(UTC),
    ).signed_with(TEST_SIGNER)
    await nc.publish("cio.trading.state", notice.model_dump_json().encode())
    await flush_ordered(nc)


async def test_a_later_halt_notice_extends_the_hold_and_the_heartbeat_names_it(make_gate, redis, nc):
    gate = await make_gate(policy_refresh_s=3600.0)  # changes arrive only by notice
    await activate(redis, nc, make_spec(), 2)
    await wait_for_policy(gate, 2)
    assert gate.heartbeat().notice_version is None

    await send_halt(nc, 3)
    await wait_until(lambda: gate.heartbeat().notice_version == 3, what="the gate holding the notice for v3")
    await send_halt(nc, 5)  # the same state for a later version: held until v5 now
    await wait_until(lambda: gate.heartbeat().notice_version == 5, what="the hold extended to v5")
    await send_halt(nc, 4)  # an older one changes nothing
    await flush_ordered(nc)

    await activate(redis, nc, make_spec(), 4)  # an active policy below the notice's version: still halted
    await wait_for_policy(gate, 4)
    beat = gate.heartbeat()
    assert (beat.policy_version, beat.trading_state, beat.notice_version) == (4, "halted", 5)
    envelope, _ = await request(nc, live_intent_body())
    assert [r.code for r in envelope.data.reasons] == [C.TRADING_HALTED]

    await activate(redis, nc, make_spec(), 5)  # the policy of that version decides again
    await wait_for_policy(gate, 5)
    beat = gate.heartbeat()
    assert (beat.policy_version, beat.trading_state, beat.notice_version) == (5, "active", None)


async def test_a_gate_without_a_policy_reports_the_halt_it_holds(gate, nc):
    assert (gate.heartbeat().policy_version, gate.heartbeat().trading_state) == (None, None)
    await send_halt(nc, 1)
    await wait_until(lambda: gate.heartbeat().notice_version == 1, what="the notice held")
    assert gate.heartbeat().trading_state == "halted"
