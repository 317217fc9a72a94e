"""The audit hash chain's link: what it covers, and how it travels (headers, spool token)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cio_kernel.audit_chain import GENESIS, ChainLink, chain_id, link_hash

PAYLOAD = b'{"decision_id":"d1","decision":"APPROVED"}'
SUBJECT = "cio.audit.decision.approved"


def test_a_chain_links_each_event_to_the_one_before():
    first = ChainLink.first_after("gate-1.1", 0, GENESIS, SUBJECT, PAYLOAD)
    second = ChainLink.first_after("gate-1.1", first.seq, first.hash, SUBJECT, b'{"decision_id":"d2"}')
    assert (first.seq, first.prev) == (1, GENESIS) and (second.seq, second.prev) == (2, first.hash)
    assert first.matches(SUBJECT, PAYLOAD) and second.matches(SUBJECT, b'{"decision_id":"d2"}')
    assert first.hash == link_hash("gate-1.1", 1, GENESIS, SUBJECT, PAYLOAD)


@given(position=st.integers(min_value=0, max_value=len(PAYLOAD) - 1), value=st.integers(0, 255))
def test_any_change_to_the_payload_breaks_the_link(position, value):
    link = ChainLink.first_after("gate-1.1", 0, GENESIS, SUBJECT, PAYLOAD)
    edited = bytearray(PAYLOAD)
    if edited[position] == value:
        value = (value + 1) % 256
    edited[position] = value
    assert not link.matches(SUBJECT, bytes(edited))


@pytest.mark.parametrize(
    "change",
    [
        {"chain": "gate-2.1"},
        {"seq": 2},
        {"prev": "1" * 64},
    ],
)
def test_the_link_covers_its_chain_position_and_predecessor(change):
    link = ChainLink.first_after("gate-1.1", 0, GENESIS, SUBJECT, PAYLOAD)
    fields = {"chain": link.chain, "seq": link.seq, "prev": link.prev, "hash": link.hash} | change
    assert not ChainLink(**fields).matches(SUBJECT, PAYLOAD)
    assert not link.matches("cio.audit.decision.rejected", PAYLOAD)  # the subject (the decision kind) too


def test_a_link_survives_headers_and_the_spool_token():
    link = ChainLink.first_after(chain_id("gate 1/α", 0x1F), 41, "a" * 64, SUBJECT, PAYLOAD)
    assert link.chain == "gate_1__.1f"
    lines = link.header_lines().decode().strip().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    assert ChainLink.from_headers(headers) == link
    assert ChainLink.from_token(link.token()) == link


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        {"Nats-Msg-Id": "d1"},
        {"Cio-Audit-Chain": "g.1", "Cio-Audit-Seq": "0", "Cio-Audit-Prev": GENESIS, "Cio-Audit-Hash": GENESIS},
        {"Cio-Audit-Chain": "g.1", "Cio-Audit-Seq": "x", "Cio-Audit-Prev": GENESIS, "Cio-Audit-Hash": GENESIS},
        {"Cio-Audit-Chain": "g 1", "Cio-Audit-Seq": "1", "Cio-Audit-Prev": GENESIS, "Cio-Audit-Hash": GENESIS},
        {"Cio-Audit-Chain": "g.1", "Cio-Audit-Seq": "1", "Cio-Audit-Prev": "zz", "Cio-Audit-Hash": GENESIS},
    ],
)
def test_missing_or_malformed_links_are_none(headers):
    assert ChainLink.from_headers(headers) is None
