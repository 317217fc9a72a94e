"""What a release prepares besides Django's migrations (`manage.py prepare_release`): the audit streams on NATS,
with the release's stated window, rate and replicas (docs/nats-cluster.md). Idempotent: a second run changes
nothing and says so."""

from nats.aio.client import Client as NATS
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from cio_kernel.audit_checkpoint import CHECKPOINT_STREAM, CHECKPOINT_SUBJECT_PREFIX
from cio_kernel.audit_stream import (
    AUDIT_STREAM,
    AUDIT_SUBJECT_PREFIX,
    audit_stream_config,
    bytes_for,
    checkpoint_stream_config,
)


def audit_config(retention_hours: float, rate_per_day: float, replicas: int, name: str = AUDIT_STREAM) -> StreamConfig:
    return audit_stream_config(
        name,
        AUDIT_SUBJECT_PREFIX,
        max_age_s=retention_hours * 3600.0,
        max_bytes=bytes_for(retention_hours, rate_per_day),
        replicas=replicas,
    )


def _limits(config: StreamConfig) -> tuple[int, int | None, int]:
    # nats-py hands max_age back as float seconds: compare whole seconds.
    return round(config.max_age or 0), config.max_bytes, config.num_replicas or 1


async def ensure_audit_streams(
    nc: NATS, retention_hours: float, rate_per_day: float, replicas: int, name: str = AUDIT_STREAM
) -> list[str]:
    """Create `CIO_AUDIT` and `CIO_AUDIT_CHECKPOINTS` when missing; bring `CIO_AUDIT`'s limits and replicas to
    the stated ones when they differ (the checkpoints' stream cannot be changed that way: deny-delete is for
    good). Returns one line per stream saying what was done."""
    js = nc.jetstream()
    wanted = audit_config(retention_hours, rate_per_day, replicas, name)
    report = []
    try:
        current = (await js.stream_info(name)).config
    except NotFoundError:
        await js.add_stream(wanted)
        report.append(f"{name}: created")
    else:
        if _limits(current) == _limits(wanted):
            report.append(f"{name}: unchanged")
        else:
            await js.update_stream(wanted)
            report.append(f"{name}: updated {_limits(current)} -> {_limits(wanted)} (max_age s, max_bytes, replicas)")
    try:
        await js.stream_info(CHECKPOINT_STREAM)
        report.append(f"{CHECKPOINT_STREAM}: unchanged")
    except NotFoundError:
        await js.add_stream(checkpoint_stream_config(CHECKPOINT_STREAM, CHECKPOINT_SUBJECT_PREFIX, replicas=replicas))
        report.append(f"{CHECKPOINT_STREAM}: created")
    return report
