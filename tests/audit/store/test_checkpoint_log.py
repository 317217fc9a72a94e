"""The checkpoint log on every backend, and the trail it vouches for: checkpoints are kept once per position
exactly as published, and retention removes a chain's start up to one of them and nothing else."""

from datetime import timedelta

from audit.store.checkpoints import AuditTrail, CheckpointLog
from audit.store.decisions import DecisionQuery
from tests.audit.records import T0, chain_of, signed, stored


def test_every_backend_keeps_the_checkpoint_log_and_the_trail(audit_store):
    assert isinstance(audit_store, CheckpointLog) and isinstance(audit_store, AuditTrail)


def test_checkpoints_are_kept_once_per_position_exactly_as_published(audit_store):
    a, b = chain_of(6), chain_of(3, gate_id="gate-b", start=6)
    first = [stored(signed(a[4])), stored(signed(a[1])), stored(signed(b[2]))]
    assert audit_store.insert_checkpoints(first) == 3
    later_signature = stored(signed(a[4], ts=T0 + timedelta(days=1)))  # the same position signed again
    assert audit_store.insert_checkpoints([later_signature, stored(signed(a[5]))]) == 1
    assert audit_store.insert_checkpoints([]) == 0
    kept = audit_store.checkpoints("gate-a.1")
    assert [c.seq for c in kept] == [2, 5, 6]
    assert kept[1].payload == first[0].payload  # the first one stored, byte for byte (its signature still holds)
    assert kept[1].checkpoint() == signed(a[4])
    assert audit_store.checkpoint_chains() == ["gate-a.1", "gate-b.1"]


def test_retention_removes_a_chains_start_up_to_a_checkpoint_and_nothing_else(audit_store):
    a, b = chain_of(10), chain_of(4, gate_id="gate-b", start=10)
    audit_store.insert_decisions(a + b)
    audit_store.insert_checkpoints([stored(signed(a[i])) for i in (1, 3, 7)] + [stored(signed(b[1]))])
    assert audit_store.prune_chain("gate-a.1", 4) == 4
    assert [r.seq for r in audit_store.chain_records("gate-a.1")] == list(range(5, 11))
    assert [c.seq for c in audit_store.checkpoints("gate-a.1")] == [4, 8]  # the one it ends at stays
    assert [r.seq for r in audit_store.chain_records("gate-b.1")] == [1, 2, 3, 4]
    assert [c.seq for c in audit_store.checkpoints("gate-b.1")] == [2]
    assert audit_store.count_decisions() == 10
    assert audit_store.get_decision(a[0].decision_id) is None
    rejected = DecisionQuery(reason_code="CONFIDENCE_TOO_LOW", limit=50)
    expected = [r.decision_id for r in a[4:] + b if "CONFIDENCE_TOO_LOW" in r.reason_codes]
    assert sorted(r.decision_id for r in audit_store.find_decisions(rejected).records) == sorted(expected)
    if audit_store.name == "django":  # the reason rows of removed decisions went with them
        from audit.models import DecisionReason

        assert not DecisionReason.objects.filter(decision_id__in=[r.decision_id for r in a[:4]]).exists()
