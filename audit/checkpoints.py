"""The gates' signed checkpoints as the control plane reads them (cio_kernel.audit_checkpoint): the latest one of
each chain from JetStream (`CIO_AUDIT_CHECKPOINTS`, outside the audit store: someone who can write the store can
neither remove nor forge them there), and the gate public keys they are checked with."""

from pathlib import Path

from nats.aio.client import Client as NATS
from pydantic import ValidationError

from cio_kernel.audit_checkpoint import AuditCheckpoint, checkpoint_subject
from cio_kernel.policy.signing import PolicyVerifier


def trusted_keys(encoded: str, key_file: Path | None) -> PolicyVerifier | None:
    """The gates' public key(s): `CIO_AUDIT_PUBLIC_KEY` (base64, comma-separated during a rotation), else the file."""
    return PolicyVerifier.from_config(encoded, key_file)


async def latest_checkpoints(nc: NATS, stream: str) -> tuple[dict[str, AuditCheckpoint], list[str]]:
    """The latest checkpoint of every chain in the stream, and the subjects whose latest message is not a
    checkpoint of the chain that subject belongs to (nothing but a gate may publish there: a finding)."""
    js = nc.jetstream()
    info = await js.stream_info(stream, subjects_filter=">")
    latest: dict[str, AuditCheckpoint] = {}
    unreadable: list[str] = []
    for subject in sorted(info.state.subjects or {}):
        message = await js.get_msg(stream, subject=subject)
        try:
            checkpoint = AuditCheckpoint.model_validate_json(message.data or b"")
        except ValidationError:
            unreadable.append(subject)
            continue
        if checkpoint_subject(checkpoint.chain).rpartition(".")[2] != subject.rpartition(".")[2]:
            unreadable.append(subject)
            continue
        latest[checkpoint.chain] = checkpoint
    return latest, unreadable
