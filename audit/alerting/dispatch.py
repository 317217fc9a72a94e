"""Hand an alert to every channel: one Celery task each, on the `alerts` queue.

The broker's identity can read, drop and add messages on that queue, so a task carries no content and proves
nothing by itself: it names the alert, the channel, the round and a fresh nonce. Before queueing, the dispatcher
records the nonce's SHA-256 in the audit store (a `dispatched` event), where the broker cannot reach; the worker
delivers only a task whose nonce matches such a record, and reads what it sends from the store."""

import hashlib
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime

from audit.alerting.channels import CHANNELS
from audit.records import DISPATCHED, AlertEvent
from audit.store import alert_log
from cio_kernel.contracts.alert import Alert


class DispatchNotRecordedError(Exception):
    """The audit store did not take the dispatch record: no worker could accept the task, so none was queued."""


def channels() -> list[str]:
    """Every channel, configured or not: an unconfigured one records `skipped`, so the gap shows in admin."""
    return list(CHANNELS)


def nonce_digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def dispatch_event_id(digest: str) -> str:
    # From the nonce alone: unique per dispatch and short enough for any alert id.
    return f"dispatch:{digest[:48]}"


def dispatch(alert: Alert, round_: int = 0, only: Iterable[str] | None = None) -> list[str]:
    """Record, then queue, one delivery per channel. Raises `DispatchNotRecordedError` when the store cannot hold
    the records and the broker's error when it cannot take the tasks (the caller falls back)."""
    from audit.alerting.tasks import QUEUE, deliver

    store = alert_log()
    sent = []
    for channel in only or channels():
        nonce = secrets.token_urlsafe(24)
        digest = nonce_digest(nonce)
        event = AlertEvent(
            dispatch_event_id(digest),
            alert.alert_id,
            datetime.now(UTC),
            DISPATCHED,
            channel,
            0,
            None,
            {"round": round_, "nonce_sha256": digest},
        )
        try:
            store.add_alert_event(event)
        except Exception as exc:
            raise DispatchNotRecordedError(f"{type(exc).__name__}: {exc}") from exc
        deliver.apply_async(args=[alert.alert_id, channel, round_, nonce], queue=QUEUE, retry=False)
        sent.append(channel)
    return sent
