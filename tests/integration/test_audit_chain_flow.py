"""A gate links its audit events into one hash chain: contiguous, verifiable from the published bytes, continued
across restarts, reported in its heartbeat, and never forked by a crash between the spool and the chain head."""

from datetime import UTC, datetime

from cio_kernel.audit_chain import GENESIS
from cio_kernel.contracts.audit_event import AuditEvent
from gate.runtime.audit_outbox import AuditOutbox
from tests.factories import live_intent_body, make_spec
from tests.integration.helpers import activate, audit_events, request, wait_for_policy


def _assert_one_chain(records, expected: int) -> list:
    links = sorted((r.link for r in records), key=lambda link: link.seq)
    assert len(records) == expected and all(link is not None for link in links)
    assert len({link.chain for link in links}) == 1
    assert [link.seq for link in links] == list(range(1, expected + 1))
    assert [link.prev for link in links] == [GENESIS] + [link.hash for link in links[:-1]]
    by_hash = {r.link.hash: r for r in records}
    assert all(link.matches(by_hash[link.hash].subject, by_hash[link.hash].payload) for link in links)
    return links


def _event(i: int) -> bytes:
    return (
        AuditEvent(
            decision_id=f"d{i}",
            ts=datetime.now(UTC),
            gate_id="crashy",
            subject="intent.trading.BTCUSDT",
            strategy_id="s",
            symbol="BTCUSDT",
            action="buy",
            intent_id=f"i{i}",
            decision="APPROVED",
            reasons=[],
            policy_version=1,
            policy_checksum=None,
            trace_id="0" * 31 + "1",
            span_id="0" * 15 + "1",
            traceparent=f"00-{'0' * 31}1-{'0' * 15}1-01",
            latency_us=1,
            signal_subject=None,
            intent=None,
        )
        .model_dump_json()
        .encode()
    )


async def _decide(nc, count: int, prefix: str) -> None:
    for i in range(count):
        await request(nc, live_intent_body(signal_id=f"{prefix}{i}", confidence=0.9 if i % 3 else 0.1))


async def test_a_gates_events_form_one_chain_and_its_heartbeat_names_the_head(make_gate, redis, nc):
    gate = await make_gate(gate_id="chain-gate")
    await activate(redis, nc, make_spec(min_confidence=0.5), 1)
    await wait_for_policy(gate, 1)
    await _decide(nc, 12, "c")
    links = _assert_one_chain(await audit_events(nc, expected=12), 12)
    beat = gate.heartbeat()
    assert (beat.audit_chain, beat.audit_seq) == (links[-1].chain, 12)
    assert links[-1].chain.startswith("chain-gate.")


async def test_a_restarted_gate_continues_its_chain(make_gate, redis, nc):
    first = await make_gate(gate_id="chain-gate")
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(first, 1)
    await _decide(nc, 5, "a")
    await first.stop()
    second = await make_gate(gate_id="chain-gate")
    await wait_for_policy(second, 1)
    await _decide(nc, 4, "b")
    _assert_one_chain(await audit_events(nc, expected=9), 9)


async def test_a_gate_without_its_head_starts_a_new_chain(make_gate, redis, nc, gate_settings):
    first = await make_gate(gate_id="chain-gate")
    await activate(redis, nc, make_spec(), 1)
    await wait_for_policy(first, 1)
    await _decide(nc, 3, "a")
    await first.stop()
    (gate_settings.audit_spool_dir / "chain-gate" / "chain-head").unlink()  # a new disk under the same id
    second = await make_gate(gate_id="chain-gate")
    await wait_for_policy(second, 1)
    await _decide(nc, 2, "b")
    records = await audit_events(nc, expected=5)
    chains = {}
    for r in records:
        chains.setdefault(r.link.chain, []).append(r)
    assert sorted(len(v) for v in chains.values()) == [2, 3]
    for members in chains.values():
        _assert_one_chain(members, len(members))


async def test_the_chain_continues_after_events_spooled_past_a_stale_head(nc, tmp_path):
    """A crash between the spool write and the head write leaves the head behind the spool: the successor must
    continue after the spooled events, never reuse their sequence numbers."""
    spool = tmp_path / "spool"
    first = AuditOutbox(nc, spool, "crashy", ack_timeout_s=0.5)
    await first.start()  # no stream yet: everything stays spooled
    stale_head = (spool / "crashy" / "chain-head").read_bytes()
    for i in range(3):
        first.submit("cio.audit.decision.approved", f"d{i}", _event(i))
    await first.close()
    (spool / "crashy" / "chain-head").write_bytes(stale_head)  # as if the process died before the head write

    await nc.jetstream().add_stream(name="CIO_AUDIT", subjects=["cio.audit.decision.>"])
    second = AuditOutbox(nc, spool, "crashy", ack_timeout_s=0.5)
    await second.start()
    assert second.chain_head[1] == 3
    second.submit("cio.audit.decision.approved", "d3", _event(3))
    assert await second.drain(10)
    await second.close()
    _assert_one_chain(await audit_events(nc, expected=4), 4)
