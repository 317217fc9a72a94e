"""Which latch records count, and what a gate keeps when Redis says otherwise (pure: no Redis here; the same rules
against a real Valkey with the gate's password are in tests/integration/test_latch_forgery.py)."""

from cio_kernel.contracts.latch import UNREADABLE_BY, LatchRecord
from cio_kernel.policy.latch_store import REFUSED, UNVERIFIED, judge
from cio_kernel.policy.signing import PolicySigner, PolicyVerifier
from gate.decision.latches import LatchBook
from tests.factories import NOW, TEST_AUDIT_SIGNER, TEST_SIGNER

GATES = PolicyVerifier([TEST_AUDIT_SIGNER.public_raw])
POLICY = PolicyVerifier([TEST_SIGNER.public_raw])
ID = "drawdown:global:*"


def trip(snapshot_ts: float = NOW, observed: float = 0.2) -> LatchRecord:
    record = LatchRecord(
        kind="drawdown",
        scope="global",
        key="*",
        tripped_at=snapshot_ts + 1,
        tripped_by="gate-a",
        snapshot_ts=snapshot_ts,
        observed=observed,
        limit=0.1,
    )
    return record.signed_trip(TEST_AUDIT_SIGNER)


def test_a_release_counts_only_when_the_policy_key_signed_it_over_that_trip():
    record = trip()
    genuine = record.released(NOW + 10, "officer1", "reviewed", TEST_SIGNER)
    assert judge(ID, genuine.model_dump_json(), GATES, POLICY).record == genuine
    forged = [
        record.model_copy(update={"released_at": NOW + 10, "released_by": "officer1", "release_reason": "x"}),
        record.released(NOW + 10, "officer1", "reviewed", PolicySigner.generate()),  # the wrong key
        record.released(NOW + 10, "officer1", "reviewed", TEST_AUDIT_SIGNER),  # a gate's key: gates only trip
        genuine.model_copy(update={"released_by": "officer2"}),  # another officer's name on a genuine release
        genuine.model_copy(update={"observed": 0.5}),  # the release moved onto another trip
    ]
    for record in forged:
        judged = judge(ID, record.model_dump_json(), GATES, POLICY)
        assert judged.record.active and judged.severity == REFUSED
    assert judge(ID, genuine.model_dump_json(), GATES, None).record.active  # no policy key: nothing releases


def test_unreadable_records_and_unsigned_trips_hold_their_latch():
    for raw in (b"{}", b"not json", trip().model_copy(update={"key": "x"}).model_dump_json(), None):
        judged = judge(ID, raw, GATES, POLICY)
        assert judged.record.active and judged.record.tripped_by == UNREADABLE_BY and judged.severity == REFUSED
    unsigned = trip().model_copy(update={"trip_signature": None})
    judged = judge(ID, unsigned.model_dump_json(), GATES, POLICY)
    assert judged.record == unsigned and judged.severity == UNVERIFIED


def test_a_gate_keeps_what_redis_lost_and_what_an_earlier_release_would_lift():
    first = trip(NOW)
    release = first.released(NOW + 10, "officer1", "reviewed", TEST_SIGNER)
    second = trip(NOW + 20, observed=0.3)  # breached again after the release
    book = LatchBook()
    book.put(second)
    assert book.replace({ID: release}, keep=set()) == [second]  # the old release put back: held, stored again
    assert book.get(ID) == second
    assert book.replace({}, keep=set()) == [second]  # lost from Redis: held, stored again
    assert book.get(ID) == second
    released_second = second.released(NOW + 30, "officer1", "reviewed", TEST_SIGNER)
    assert book.replace({ID: released_second}, keep=set()) == []
    assert not book.get(ID).active  # its own release lifts it


def test_a_release_lifts_a_trip_from_an_earlier_snapshot_by_another_gate():
    stored, mine = trip(NOW), trip(NOW + 2, observed=0.25)  # two gates tripped; the other's record was stored
    book = LatchBook()
    book.put(mine)
    assert book.replace({ID: stored.released(NOW + 10, "officer1", "reviewed", TEST_SIGNER)}, keep=set()) == []
    assert not book.get(ID).active


def test_a_release_of_a_trip_with_a_far_future_snapshot_still_lifts_that_trip():
    planted = trip(NOW + 10**6)  # whatever a trip claims, the release that names it lifts it
    book = LatchBook()
    book.put(planted)
    assert book.replace({ID: planted.released(NOW, "officer1", "planted", TEST_SIGNER)}, keep=set()) == []
    assert not book.get(ID).active
