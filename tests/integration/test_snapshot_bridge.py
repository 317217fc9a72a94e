"""The snapshot bridge against a real gate, real NATS and Redis, and the trade-engine stand-in as a real HTTP server
serving the engine's `GET /state`: what the engine reports reaches the exposure limits; when the engine cannot be
read nothing is published (the gate's own SNAPSHOT_MISSING / SNAPSHOT_STALE apply), an alert is raised, and both
recover when the engine answers again. Time moves on one injected clock shared by the gate and the bridge."""

import asyncio
import contextlib
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import nats
import orjson
import pytest

from bridges.engine_state.config import BridgeSettings
from bridges.engine_state.service import SnapshotBridge
from cio_kernel.contracts.alert import Alert
from cio_kernel.contracts.portfolio import PortfolioSnapshot
from cio_kernel.nats_flush import flush_ordered
from deploy.fake_tradeengine import FakeTradeEngine, demo_book
from deploy.servers import free_port, nats_server
from tests.factories import live_intent_body, make_spec
from tests.integration.helpers import ManualClock, activate, collect, request, wait_for_policy, wait_until

SYMBOLS = "BTCUSDT,ETHUSDT,DOGEUSDT,SOLUSDT"
EXPOSURE_POLICY = make_spec(max_symbol_exposure_usd=40_000, max_total_exposure_usd=100_000, max_snapshot_age_s=30)


@pytest.fixture
def engine() -> Iterator[FakeTradeEngine]:
    stand_in = FakeTradeEngine(book=demo_book()).start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
async def make_bridge(nats_url: str) -> AsyncIterator:
    started: list[SnapshotBridge] = []

    async def start(url: str, clock: ManualClock, **overrides: object) -> SnapshotBridge:
        values = {
            "nats_url": nats_url,
            "engine_state_url": url,
            "snapshot_symbols": SYMBOLS,
            # Generous: the engine stand-in answers from a thread of this process, which a loaded machine can hold
            # back past 2 s (seen: a malformed answer reported as a timeout). The timeout path sets its own.
            "engine_timeout_s": 10.0,
            "snapshot_alert_every_s": 10.0,
            "snapshot_critical_after_s": 30.0,
        }
        settings = BridgeSettings(**(values | overrides))
        bridge = SnapshotBridge(settings, clock=clock.time, monotonic=clock.monotonic)
        await bridge.start()
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        await bridge.stop()


def intent(clock: ManualClock, **overrides: object) -> dict:
    """An intent stamped with the gate's (moved) wall clock, so only the snapshot's age is in question."""
    return live_intent_body(
        signal_id=None, timestamp=datetime.fromtimestamp(clock.time(), UTC).isoformat(), **overrides
    )


async def codes(nc, clock: ManualClock, **overrides: object) -> tuple[str, list[str]]:
    envelope, _ = await request(nc, intent(clock, **overrides))
    return envelope.data.decision, [reason.code for reason in envelope.data.reasons]


async def settled(*clients) -> None:
    """Everything the bridge sent before this point has been routed, and delivered to the test's subscribers."""
    for client in clients:
        await flush_ordered(client)


async def test_the_bridge_feeds_the_gate_and_fails_closed_when_the_engine_cannot_be_read(
    nc, redis, make_gate, make_bridge, engine
):
    clock = ManualClock(wall=datetime.now(UTC).timestamp())
    gate = await make_gate(clock=clock, run_loops=False)
    snapshots = await collect(nc, "cio.portfolio.snapshot")
    alerts = await collect(nc, "cio.alert.>")
    await activate(redis, nc, EXPOSURE_POLICY, 1)
    await wait_for_policy(gate, 1)
    bridge = await make_bridge(f"{engine.url}/state", clock)

    # The engine fails (its 500): nothing is published, the gate has no book, a warning says why.
    engine.state_failure = "Dispatcher failure"
    outcome = await bridge.step()
    assert outcome.snapshot is None and outcome.kind == "http_error"
    await settled(bridge.nc, nc)
    assert snapshots.messages == []
    assert await codes(nc, clock) == ("REJECTED", ["SNAPSHOT_MISSING"])
    warning = Alert.model_validate_json(alerts.messages[0].data)
    assert alerts.messages[0].subject == "cio.alert.warning" and warning.source == "snapshot-bridge"
    assert "Failed to retrieve engine state: Dispatcher failure" in warning.detail["why"]
    assert warning.detail["key"] == "engine_http_error"

    # The engine answers: one snapshot of the demo book; the gate judges exposure on it; a recovery note.
    engine.state_failure = None
    outcome = await bridge.step()
    assert outcome.snapshot is not None
    await snapshots.wait_for(1)
    published = PortfolioSnapshot.model_validate_json(snapshots.messages[0].data)
    assert published == outcome.snapshot
    assert {s: round(p.notional_usd) for s, p in published.positions.items()} == {
        "BTCUSDT": 38_800,
        "ETHUSDT": 17_000,
        "DOGEUSDT": 8_000,
    }
    await wait_until(lambda: gate.state.portfolio == published, what="the gate adopting the bridge's snapshot")
    assert await codes(nc, clock) == ("APPROVED", [])  # 500 USD more BTC: 39,300 of 40,000
    assert await codes(nc, clock, quantity=0.1) == ("REJECTED", ["SYMBOL_EXPOSURE_EXCEEDED"])  # 43,800
    await alerts.wait_for(2)
    recovered = Alert.model_validate_json(alerts.messages[1].data)
    assert alerts.messages[1].subject == "cio.alert.info" and recovered.detail["failed_rounds"] == 1

    # The engine goes away: nothing published; once the last snapshot is older than the policy allows, the gate
    # says so; an outage longer than CIO_SNAPSHOT_CRITICAL_AFTER_S raises a critical alert.
    engine.stop()
    outcome = await bridge.step()
    assert outcome.kind == "unreachable"
    clock.advance(31)
    assert await gate.policy_sync.refresh_step()  # the policy itself is confirmed at the new time
    outcome = await bridge.step()
    assert outcome.kind == "unreachable"
    await settled(bridge.nc, nc)
    assert len(snapshots.messages) == 1
    assert await codes(nc, clock) == ("REJECTED", ["SNAPSHOT_STALE"])
    assert await codes(nc, clock, action="close") == ("APPROVED", [])  # reducing intents still pass
    kinds = [(m.subject, Alert.model_validate_json(m.data).detail["key"]) for m in alerts.messages[2:]]
    assert kinds == [
        ("cio.alert.warning", "engine_unreachable"),
        ("cio.alert.warning", "engine_unreachable"),  # again after the coalescing interval (10 s here)
        ("cio.alert.critical", "snapshot_outage"),
    ]

    # The engine is back: a fresh snapshot, the gate approves again, a recovery note with the outage's length.
    engine.start()
    outcome = await bridge.step()
    assert outcome.snapshot is not None and outcome.snapshot.ts.timestamp() == pytest.approx(clock.time())
    await wait_until(lambda: gate.state.portfolio == outcome.snapshot, what="the fresh snapshot adopted")
    assert await codes(nc, clock) == ("APPROVED", [])
    await alerts.wait_for(6)
    note = Alert.model_validate_json(alerts.messages[5].data)
    assert alerts.messages[5].subject == "cio.alert.info" and note.detail == {
        "key": "snapshot_recovered",
        "outage_s": 31.0,
        "failed_rounds": 2,
    }
    assert bridge.published == 2 and bridge.failed_rounds == 3


async def test_a_coalesced_outage_raises_one_warning_per_interval(nc, make_bridge, engine):
    clock = ManualClock()
    alerts = await collect(nc, "cio.alert.>")
    engine.state_payload = b'{"portfolio": {"gross_exposure": "lots"}}'
    bridge = await make_bridge(f"{engine.url}/state", clock)
    for _ in range(5):
        assert (await bridge.step()).kind == "malformed"
    await settled(bridge.nc, nc)
    assert len(alerts.messages) == 1  # five failed rounds within 10 s: one alert
    assert "portfolio.gross_exposure" in Alert.model_validate_json(alerts.messages[0].data).detail["why"]


async def test_a_daily_loss_limit_answers_daily_pnl_unknown_on_the_engines_figures(
    nc, redis, make_gate, make_bridge, engine
):
    """The engine's PnL has no trading-day window: the bridge leaves it out, and the gate refuses to guess."""
    clock = ManualClock(wall=datetime.now(UTC).timestamp())
    gate = await make_gate(clock=clock, run_loops=False)
    await activate(redis, nc, make_spec(max_daily_loss_usd=20_000, max_symbol_exposure_usd=40_000), 1)
    await wait_for_policy(gate, 1)
    bridge = await make_bridge(f"{engine.url}/state", clock)
    outcome = await bridge.step()
    assert outcome.snapshot is not None
    await wait_until(lambda: gate.state.portfolio == outcome.snapshot, what="snapshot adopted")
    assert await codes(nc, clock) == ("REJECTED", ["DAILY_PNL_UNKNOWN"])
    assert await codes(nc, clock, action="close") == ("APPROVED", [])


async def test_what_the_reader_refuses(nc, make_bridge, engine):
    clock = ManualClock()
    # An answer over the size bound.
    engine.state_payload = b'{"portfolio": {}, "pad": "' + b"x" * 10_000 + b'"}'
    bridge = await make_bridge(f"{engine.url}/state", clock, engine_max_bytes=4096)
    assert (await bridge.step()).kind == "too_large"
    # Exposure in a symbol nobody polls: refused, not hidden from the limits.
    engine.state_payload = None
    engine.book.positions[("XRPUSDT", "LONG")] = {"quantity": 1_000.0, "avg_price": 2.0}
    assert (await bridge.step()).kind == "unpolled_exposure"
    # No capital: the engine would report zero exposure whatever it holds.
    engine.book.positions.pop(("XRPUSDT", "LONG"))
    engine.book.total_portfolio_value = 0.0
    assert (await bridge.step()).kind == "no_capital"
    # A server that accepts the connection and never answers: the round ends at the timeout.
    with contextlib.closing(socket.socket()) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        hung = await make_bridge(f"http://127.0.0.1:{silent.getsockname()[1]}/state", clock, engine_timeout_s=0.3)
        assert (await hung.step()).kind == "timeout"
    # Nobody listening at all.
    gone = await make_bridge(f"http://127.0.0.1:{free_port()}/state", clock)
    assert (await gone.step()).kind == "unreachable"
    assert bridge.published == hung.published == gone.published == 0


def test_the_stand_in_answers_like_the_engine(engine):
    with urllib.request.urlopen(f"{engine.url}/state?symbol=BTCUSDT", timeout=5) as response:
        state = orjson.loads(response.read())
    assert state["portfolio"] == {
        "gross_exposure": pytest.approx(63_800 / 250_000),
        "same_asset_pct": pytest.approx(38_800 / 250_000),
        "open_positions_count": 3,
    }
    assert state["env_stats"] == {
        "global_drawdown_pct": pytest.approx(1_200 / 250_000),
        "open_orders_global": 1,
        "open_orders_symbol": 1,
        "available_capital_usd": 250_000.0,
    }
    assert set(state["risk_limits"]) == {
        "max_drawdown_pct",
        "max_orders_global",
        "max_orders_per_symbol",
        "max_position_size_usd",
    }
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{engine.url}/state", timeout=5)
    assert missing.value.code == 422 and orjson.loads(missing.value.read())["detail"][0]["loc"] == ["query", "symbol"]
    engine.state_failure = "boom"
    with pytest.raises(urllib.error.HTTPError) as failed:
        urllib.request.urlopen(f"{engine.url}/state?symbol=BTCUSDT", timeout=5)
    assert failed.value.code == 500
    assert orjson.loads(failed.value.read()) == {"detail": "Failed to retrieve engine state: boom"}


async def test_the_bridge_runs_until_stopped(nats_url, nc, engine):
    """`run_until_stopped`, as `python -m bridges.engine_state` runs it: rounds on its schedule, a clean stop."""
    snapshots = await collect(nc, "cio.portfolio.snapshot")
    settings = BridgeSettings(
        nats_url=nats_url, engine_state_url=f"{engine.url}/state", snapshot_symbols=SYMBOLS, snapshot_every_s=0.05
    )
    bridge = SnapshotBridge(settings)
    task = asyncio.create_task(bridge.run_until_stopped(handle_signals=False))
    await snapshots.wait_for(2)
    bridge.request_stop()
    await asyncio.wait_for(task, 5)
    assert bridge.nc is not None and bridge.nc.is_closed
    assert bridge.published >= 2 and bridge.failed_rounds == 0


async def test_a_bridge_started_before_nats_waits_for_it_and_then_publishes(engine, tmp_path):
    """Started while NATS is not up yet (a restart, or a rollout order nobody controls), the bridge retries the
    connection rather than exiting, and publishes once NATS is there."""
    port = free_port()
    settings = BridgeSettings(
        nats_url=f"nats://127.0.0.1:{port}", engine_state_url=engine.url + "/state", snapshot_symbols=SYMBOLS
    )
    bridge = SnapshotBridge(settings)
    starting = asyncio.create_task(bridge.start())
    await asyncio.sleep(0.5)  # it has tried and failed at least once by now; the assertion does not depend on it
    assert not starting.done()  # still waiting for NATS, not exited
    server = await asyncio.to_thread(nats_server(port, tmp_path / "js", tmp_path / "nats.log").start)
    try:
        await asyncio.wait_for(starting, 20)
        nc = await nats.connect(f"nats://127.0.0.1:{port}")
        snapshots = await collect(nc, "cio.portfolio.snapshot")
        await bridge.step()
        [msg] = await snapshots.wait_for(1)
        assert PortfolioSnapshot.model_validate_json(msg.data).equity_usd > 0
        await nc.close()
    finally:
        await bridge.stop()
        server.stop()


async def test_a_stop_request_ends_the_wait_for_nats(engine):
    settings = BridgeSettings(
        nats_url=f"nats://127.0.0.1:{free_port()}", engine_state_url=engine.url + "/state", snapshot_symbols=SYMBOLS
    )
    bridge = SnapshotBridge(settings)
    starting = asyncio.create_task(bridge.start())
    await asyncio.sleep(0.3)
    bridge.request_stop()
    with pytest.raises(ConnectionAbortedError, match="stopped before NATS"):
        await asyncio.wait_for(starting, 5)  # at once, not after some connection timeout
