"""A gate's signed checkpoint: what its signature covers, and what it cannot be mistaken for."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from cio_kernel.audit_checkpoint import AuditCheckpoint, checkpoint_subject
from cio_kernel.policy.signing import PolicySigner, PolicyVerifier

GATE = PolicySigner.generate()
TRUST = PolicyVerifier([GATE.public_raw])
TS = datetime(2026, 11, 2, 9, 30, 0, 123456, tzinfo=UTC)


def _checkpoint(**changes: object) -> AuditCheckpoint:
    fields: dict = {"chain": "gate-1.18f", "seq": 42, "digest": "ab" * 32, "gate_id": "gate-1", "ts": TS}
    fields.update(changes)
    return AuditCheckpoint.sign(GATE, fields["chain"], fields["seq"], fields["digest"], fields["gate_id"], fields["ts"])


def test_a_checkpoint_verifies_with_the_gates_key_only_and_survives_its_json():
    checkpoint = _checkpoint()
    assert checkpoint.verified_by(TRUST)
    assert AuditCheckpoint.model_validate_json(checkpoint.model_dump_json()).verified_by(TRUST)
    assert not checkpoint.verified_by(PolicyVerifier([PolicySigner.generate().public_raw]))
    assert not checkpoint.verified_by(None)


@pytest.mark.parametrize(
    "change",
    [
        {"chain": "gate-2.18f"},
        {"seq": 41},
        {"hash": "cd" * 32},
        {"ts": TS + timedelta(microseconds=1)},
        {"gate_id": "gate-2"},
        {"key_id": "0" * 16},
    ],
)
def test_the_signature_covers_every_field(change):
    altered = _checkpoint().model_copy(update=change)
    assert not altered.verified_by(TRUST)


def test_a_policy_signature_is_not_a_checkpoint_signature():
    genuine = _checkpoint()
    policy_style = GATE.sign(b"petrosa-cio policy v1\n" + genuine.signed_bytes().split(b"\n", 1)[1])
    assert not genuine.model_copy(update={"signature": policy_style}).verified_by(TRUST)


@pytest.mark.parametrize(
    "bad",
    [{"seq": 0}, {"hash": "AB" * 32}, {"hash": "ab" * 31}, {"chain": "gate 1"}, {"ts": "2026-11-02T09:30:00"}],
)
def test_a_malformed_checkpoint_is_refused(bad):
    body = {**_checkpoint().model_dump(mode="json"), **bad}
    with pytest.raises(ValidationError):
        AuditCheckpoint.model_validate(body)


def test_each_chain_has_its_own_subject_even_when_ids_hold_dots():
    assert checkpoint_subject("gate.a.1") != checkpoint_subject("gate_a.1")
    assert checkpoint_subject("gate.a.1").count(".") == 3  # cio.audit.checkpoint.<digest>
