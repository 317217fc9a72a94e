"""A gate links its audit events into one hash chain: contiguous, verifiable from the published bytes, continued
across restarts, reported in its heartbeat, and never forked by a crash between the spool and the chain head. It
signs the chain's head off the decision path and publishes it on a stream nothing may delete from."""

import logging
from datetime import UTC, datetime

import pytest
from nats.js.api import StreamConfig
from nats.js.errors import APIError, NotFoundError

from audit.checkpoints import latest_checkpoints
from cio_kernel.audit_chain import GENESIS
from cio_kernel.audit_checkpoint import CHECKPOINT_STREAM, AuditCheckpoint, checkpoint_subject
from cio_kernel.contracts.audit_event import AuditEvent
from cio_kernel.policy.signing import PolicyVerifier
from gate.runtime.audit_outbox import AuditOutbox
from tests.factories import TEST_AUDIT_SIGNER, live_intent_body, make_spec
from tests.integration.helpers import activate, audit_events, request, wait_for_policy

TRUST = PolicyVerifier([TEST_AUDIT_SIGNER.public_raw])


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


async def _checkpoints_of(nc, chain: str) -> list[AuditCheckpoint]:
    """Every checkpoint the stream holds for one chain, oldest first."""
    js = nc.jetstream()
    sub = await js.subscribe(checkpoint_subject(chain), stream=CHECKPOINT_STREAM, ordered_consumer=True)
    info = await js.stream_info(CHECKPOINT_STREAM, subjects_filter=checkpoint_subject(chain))
    found = []
    try:
        for _ in range((info.state.subjects or {}).get(checkpoint_subject(chain), 0)):
            found.append(AuditCheckpoint.model_validate_json((await sub.next_msg(timeout=5)).data))
    finally:
        await sub.unsubscribe()
    return found


async def test_the_gate_signs_its_head_when_it_moved_and_once_more_when_it_stops(make_gate, redis, nc):
    await activate(redis, nc, make_spec(), 1)
    gate = await make_gate(gate_id="signing-gate", run_loops=False)  # each step driven here
    assert not await gate.checkpoint_step()  # nothing decided yet: nothing to vouch for
    await _decide(nc, 3, "a")
    assert await gate.checkpoint_step()
    assert not await gate.checkpoint_step()  # the head has not moved since
    chain = gate.heartbeat().audit_chain
    await _decide(nc, 2, "b")
    await gate.stop()  # drains, then signs the last head
    signed = await _checkpoints_of(nc, chain)
    assert [(c.chain, c.seq, c.gate_id) for c in signed] == [(chain, 3, "signing-gate"), (chain, 5, "signing-gate")]
    assert all(c.verified_by(TRUST) for c in signed)
    links = {link.seq: link.hash for link in (r.link for r in await audit_events(nc, expected=5))}
    assert [c.hash for c in signed] == [links[3], links[5]]  # the events' own link hashes
    latest, unreadable = await latest_checkpoints(nc, CHECKPOINT_STREAM)
    assert (latest[chain].seq, unreadable) == (5, [])


async def test_a_gate_without_the_signing_key_decides_and_audits_but_vouches_for_nothing(
    make_gate, redis, nc, tmp_path, caplog
):
    await activate(redis, nc, make_spec(), 1)
    with caplog.at_level(logging.ERROR, logger="gate.runtime.audit_checkpoints"):
        gate = await make_gate(audit_signing_key_file=tmp_path / "absent.key", run_loops=False)
    assert "no audit signing key" in caplog.text
    await _decide(nc, 2, "a")
    assert len(await audit_events(nc, expected=2)) == 2
    assert not await gate.checkpoint_step()
    with pytest.raises(NotFoundError):
        await nc.jetstream().stream_info(CHECKPOINT_STREAM)


async def test_nothing_may_delete_or_purge_a_checkpoint_or_lift_that_rule(make_gate, redis, nc):
    await activate(redis, nc, make_spec(), 1)
    gate = await make_gate(run_loops=False)
    await _decide(nc, 1, "a")
    assert await gate.checkpoint_step()
    js = nc.jetstream()
    info = await js.stream_info(CHECKPOINT_STREAM)
    assert (info.config.deny_delete, info.config.deny_purge, info.state.messages) == (True, True, 1)
    with pytest.raises(APIError):
        await js.delete_msg(CHECKPOINT_STREAM, info.state.last_seq)
    with pytest.raises(APIError):
        await js.purge_stream(CHECKPOINT_STREAM)
    config = info.config.as_dict()
    await js.update_stream(StreamConfig.from_response({**config, "description": "audit checkpoints"}))  # may
    for lifted in ({"deny_delete": False}, {"deny_purge": False}):
        with pytest.raises(APIError):
            await js.update_stream(StreamConfig.from_response({**config, **lifted}))
    assert (await js.stream_info(CHECKPOINT_STREAM)).state.messages == 1


async def test_a_successor_signs_what_a_crashed_gate_left_unsigned_in_its_spool(make_gate, nc, gate_settings):
    crashed = AuditOutbox(nc, gate_settings.audit_spool_dir, "crashy", ack_timeout_s=0.5)
    await crashed.start()  # no stream yet: everything stays spooled, and nothing was signed
    for i in range(3):
        crashed.submit("cio.audit.decision.approved", f"d{i}", _event(i))
    chain, seq, head = crashed.chain_tip
    await crashed.close()  # its lock is free: the next gate on this volume adopts the spool
    successor = await make_gate(gate_id="successor", run_loops=False)
    assert await audit_events(nc, expected=3)
    assert not await successor.checkpoint_step()  # its own chain has no event yet...
    latest, _ = await latest_checkpoints(nc, CHECKPOINT_STREAM)
    signed = latest[chain]  # ...but the crashed gate's head, read from its spool, is signed
    assert seq == 3 and (signed.seq, signed.hash, signed.gate_id) == (3, head, "successor")
    assert signed.verified_by(TRUST)
