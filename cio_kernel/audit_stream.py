"""The `CIO_AUDIT` stream's configuration, in one place for the gates that create it and the tools that check it.

Retention is by limits: an event stays until it is `max_age_s` old or the stream exceeds `max_bytes`, whether or
not the audit store has taken it (the ingest acknowledges, it does not delete). Those limits are therefore how
long the store may be away before events are lost; the ingest warns at half of either (docs/audit.md).

Sizing (docs/nats-cluster.md, "Sizing CIO_AUDIT"): the limits are derived from a stated retention window and an
expected rate, never picked apart. An event takes about `AUDIT_EVENT_STORED_BYTES` in the stream (measured on a
real JetStream by tests/unit/test_audit_stream_sizing.py: the JSON body plus subject, `Nats-Msg-Id` header and
the store's per-message framing), so `max_bytes = rate × window × AUDIT_EVENT_STORED_BYTES`; a `max_bytes` set
by hand that cannot hold `max_age` at the stated rate is reported by `retention_shortfall`, which the gate and
the ingest log at start."""

import math

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

AUDIT_STREAM = "CIO_AUDIT"
AUDIT_SUBJECT_PREFIX = "cio.audit.decision"
# One stored audit event, in bytes. Measured on a real JetStream (tests/integration/test_audit_stream_sizing.py):
# a decision on a TA bot intent is 1,108 B of JSON and takes 1,427 B in the stream with its subject, its
# `Nats-Msg-Id` and chain headers and the store's framing.
AUDIT_EVENT_STORED_BYTES = 1_430
# The stated defaults: a week of events at a million decisions a day, 10 GB (production states its own window
# and rate: 3 days at 10M a day, 42.9 GB per replica; see docs/nats-cluster.md).
DEFAULT_RETENTION_HOURS = 7 * 24.0
DEFAULT_EXPECTED_RATE_PER_DAY = 1_000_000
DEFAULT_DUPLICATE_WINDOW_S = 600.0


def bytes_for(retention_hours: float, rate_per_day: float, event_bytes: int = AUDIT_EVENT_STORED_BYTES) -> int:
    """What the stream must hold to keep `retention_hours` of events arriving at `rate_per_day`."""
    return math.ceil(rate_per_day * retention_hours / 24.0 * event_bytes)


def hours_held(max_bytes: int, rate_per_day: float, event_bytes: int = AUDIT_EVENT_STORED_BYTES) -> float:
    """How many hours of events `max_bytes` holds at `rate_per_day`."""
    return max_bytes / (rate_per_day * event_bytes) * 24.0


def retention_shortfall(
    max_age_s: float, max_bytes: int, rate_per_day: float, event_bytes: int = AUDIT_EVENT_STORED_BYTES
) -> str | None:
    """A warning when `max_bytes` runs out before `max_age_s` at the stated rate (the size limit, not the age,
    then decides how long events wait for the store), else None."""
    held_h = hours_held(max_bytes, rate_per_day, event_bytes)
    if held_h * 3600.0 >= max_age_s:
        return None
    return (
        f"{AUDIT_STREAM} max_bytes {max_bytes:,} holds about {held_h:.1f} h of audit events at "
        f"{rate_per_day:,.0f} a day (~{event_bytes} B each), not the {max_age_s / 3600.0:.1f} h of its max_age: "
        f"raise CIO_AUDIT_MAX_BYTES to {bytes_for(max_age_s / 3600.0, rate_per_day, event_bytes):,} or state the "
        "window and rate (CIO_AUDIT_STREAM_RETENTION_HOURS, CIO_AUDIT_EXPECTED_RATE_PER_DAY) and let them derive it"
    )


DEFAULT_MAX_AGE_S = DEFAULT_RETENTION_HOURS * 3600.0
DEFAULT_MAX_BYTES = bytes_for(DEFAULT_RETENTION_HOURS, DEFAULT_EXPECTED_RATE_PER_DAY)


def audit_stream_config(
    name: str = AUDIT_STREAM,
    subject_prefix: str = AUDIT_SUBJECT_PREFIX,
    duplicate_window_s: float = DEFAULT_DUPLICATE_WINDOW_S,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
    replicas: int = 1,
) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=[f"{subject_prefix}.>"],
        num_replicas=replicas,  # 3 on the production cluster (CIO_AUDIT_REPLICAS), 1 on a single server
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


def checkpoint_stream_config(
    name: str, subject_prefix: str, per_chain: int = CHECKPOINTS_PER_CHAIN, replicas: int = 1
) -> StreamConfig:
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
        num_replicas=replicas,
        duplicate_window=DEFAULT_DUPLICATE_WINDOW_S,
        deny_delete=True,
        deny_purge=True,
    )
