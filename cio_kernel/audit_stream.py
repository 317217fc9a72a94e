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
