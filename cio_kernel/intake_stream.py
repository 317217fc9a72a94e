"""The intake stream: every intent published on an intake subject is kept for a few minutes, so an intent nobody
waits for (a plain publish) is decided even when no gate was listening when it was sent (docs/contracts.md,
"Producers that never listen").

- `CIO_INTAKE` captures the intake subjects with `no_ack`: JetStream must never answer a request (a PubAck on
  the reply inbox would reach the requester before the gate's decision).
- `CIO_INTAKE_CLAIMS` keeps, per fingerprint, the latest claim a gate published for a request it took on its
  fast path (`cio.intake.claim.<fingerprint>`), so the stream path can skip the stored copy of that request.
- Decisions are also published on `cio.decision.<strategy key>` (the reply envelope), for strategies and
  dashboards that do not wait for a reply.
"""

import hashlib
import uuid

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from cio_kernel.contracts.identity import STRATEGY_SUBJECT_PREFIX, is_strategy_key
from cio_kernel.ids import COUNTER_BITS, uuid7_int
from cio_kernel.subjects import INTENT_SUBJECTS

INTAKE_STREAM = "CIO_INTAKE"
INTAKE_CLAIMS_STREAM = "CIO_INTAKE_CLAIMS"
INTAKE_CONSUMER = "cio-gate-intake"
CLAIM_SUBJECT_PREFIX = "cio.intake.claim"
DECISION_SUBJECT_PREFIX = "cio.decision"
# No strategy key has a `-` (separators fold to `_`), so this token is no strategy's.
UNIDENTIFIED_TOKEN = "no-strategy"  # noqa: S105 - a subject token
DEFAULT_MAX_AGE_S = 300.0
DEFAULT_MAX_BYTES = 1024**3
# uuid5 namespace of stream-path decision ids (any fixed value; changing it would change every replayed id).
_DECISION_NAMESPACE = uuid.UUID("6f1d2c1e-3b7a-5c52-9a41-5e0c1d7b9a10")
_COUNTER_MASK = (1 << COUNTER_BITS) - 1


def intake_stream_config(
    name: str = INTAKE_STREAM, max_age_s: float = DEFAULT_MAX_AGE_S, max_bytes: int = DEFAULT_MAX_BYTES
) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=list(INTENT_SUBJECTS),
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        no_ack=True,
        max_age=max_age_s,
        max_bytes=max_bytes,
    )


def claims_stream_config(
    name: str = INTAKE_CLAIMS_STREAM, subject_prefix: str = CLAIM_SUBJECT_PREFIX, max_age_s: float = DEFAULT_MAX_AGE_S
) -> StreamConfig:
    """One claim per fingerprint (the latest), read by subject with a direct get (no consumer). Kept as long as
    the intake stream keeps intents, so no stored request outlives its claim."""
    return StreamConfig(
        name=name,
        subjects=[f"{subject_prefix}.>"],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        no_ack=True,
        max_msgs_per_subject=1,
        max_age=max_age_s,
        allow_direct=True,
    )


def fingerprint(subject: str, payload: bytes) -> str:
    """Short hash of what a producer sent (subject and bytes), 32 hex: the claim subject's last token."""
    digest = hashlib.blake2b(payload, digest_size=16, key=subject.encode()[:64])
    if len(subject) > 64:
        digest.update(subject.encode()[64:])
    return digest.hexdigest()


def stream_decision_id(stream: str, sequence: int, stored_us: int) -> str:
    """The decision id of the intent stored at `sequence` at `stored_us` (the stream's timestamp, microseconds):
    the same on every delivery of that message, so a redelivery after a crash re-creates the id the first attempt
    audited (and JetStream and the store drop the second event). The timestamp tells a recreated stream's reused
    sequence numbers apart, and every gate reads it from the message itself. Time-ordered like the gate's own ids
    (cio_kernel.ids): a UUIDv7 of the stored millisecond whose 74 other bits are the uuid5 hash of the three."""
    digest = uuid.uuid5(_DECISION_NAMESPACE, f"{stream}:{sequence}:{stored_us}").int
    return f"{uuid7_int(stored_us // 1000, digest & _COUNTER_MASK):032x}"


def decision_token(subject: str, body_key: str | None) -> str:
    """The strategy whose decision subject carries a decision: the one the intake subject names (only that
    strategy's identity may publish on its own subject), else the one the intent's body names."""
    if subject.startswith(STRATEGY_SUBJECT_PREFIX):
        named = subject[len(STRATEGY_SUBJECT_PREFIX) :]
        if is_strategy_key(named):
            return named
    return body_key if body_key else UNIDENTIFIED_TOKEN
