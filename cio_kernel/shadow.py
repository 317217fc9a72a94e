"""Shadow mode's names (docs/deploy.md, "Shadow mode"): where a shadow gate's decisions are audited, and the stream
it records the serving CIO's promotions in for `manage.py shadow_report` (what was actually promoted, beside what
the shadow decided)."""

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from cio_kernel.audit_stream import AUDIT_SUBJECT_PREFIX

# A shadow gate audits on `<audit prefix>.shadow.<approved|rejected|retry_safe>`: in `CIO_AUDIT` with the rest,
# but nothing subscribed to a serving decision subject (`cio.audit.decision.rejected`) hears it.
SHADOW_SUBJECT_PART = "shadow"
SHADOW_AUDIT_PREFIX = f"{AUDIT_SUBJECT_PREFIX}.{SHADOW_SUBJECT_PART}."


def is_shadow_subject(audit_subject: str) -> bool:
    return audit_subject.startswith(SHADOW_AUDIT_PREFIX)


SHADOW_SIGNAL_STREAM = "CIO_SHADOW_SIGNALS"
DEFAULT_MAX_AGE_S = 14 * 86_400.0
DEFAULT_MAX_BYTES = 2 * 1024**3


def shadow_signal_stream_config(
    name: str, signal_subject_prefix: str, max_age_s: float = DEFAULT_MAX_AGE_S
) -> StreamConfig:
    """Every signal on `<prefix>.>`, kept `max_age_s`. `no_ack`: the stream never answers a publish, so a
    publisher that sends its signals as requests still hears only the trade engine."""
    return StreamConfig(
        name=name,
        subjects=[f"{signal_subject_prefix}.>"],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        max_age=max_age_s,
        max_bytes=DEFAULT_MAX_BYTES,
        no_ack=True,
    )
