"""The `CIO_AUDIT` stream's configuration, in one place for the gates that create it and the tools that check it.

Retention is by limits: an event stays until it is `max_age_s` old or the stream exceeds `max_bytes`, whether or
not the audit store has taken it (the ingest acknowledges, it does not delete). Those limits are therefore how
long the store may be away before events are lost; the ingest warns at half of either (docs/audit.md)."""

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

AUDIT_STREAM = "CIO_AUDIT"
AUDIT_SUBJECT_PREFIX = "cio.audit.decision"
DEFAULT_MAX_AGE_S = 7 * 86_400.0
DEFAULT_MAX_BYTES = 8 * 1024**3
DEFAULT_DUPLICATE_WINDOW_S = 600.0


def audit_stream_config(
    name: str = AUDIT_STREAM,
    subject_prefix: str = AUDIT_SUBJECT_PREFIX,
    duplicate_window_s: float = DEFAULT_DUPLICATE_WINDOW_S,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=[f"{subject_prefix}.>"],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        duplicate_window=min(duplicate_window_s, max_age_s),  # JetStream refuses a window past the max age
        max_age=max_age_s,
        max_bytes=max_bytes,
    )


# Checkpoints (cio_kernel.audit_checkpoint): at most one a second per busy gate, a few hundred bytes each. Every
# chain keeps its latest ones for good (no max age): the latest is what `audit_verify` checks the store against.
CHECKPOINTS_PER_CHAIN = 100_000


def checkpoint_stream_config(name: str, subject_prefix: str, per_chain: int = CHECKPOINTS_PER_CHAIN) -> StreamConfig:
    """The stream gates publish signed checkpoints to. Nothing may delete or purge its messages through the
    JetStream API (`deny_delete`/`deny_purge`, which cannot be lifted once set); only the per-chain limit retires
    old checkpoints, never a chain's latest."""
    return StreamConfig(
        name=name,
        subjects=[f"{subject_prefix}.>"],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        max_msgs_per_subject=per_chain,
        duplicate_window=DEFAULT_DUPLICATE_WINDOW_S,
        deny_delete=True,
        deny_purge=True,
    )
