"""The dispatch record: what makes a delivery task on the `alerts` queue the bridge's own.

The broker's identity can read, drop and add messages on that queue, so a task carries no content and proves
nothing by itself: it names the alert, the channel, the round and a fresh nonce. Before queueing, the dispatcher
(`alerting.tasks.dispatch`) records the nonce's SHA-256 in the audit store (a `dispatched` event), where the broker
cannot reach; the worker delivers only a task whose nonce matches such a record, and reads what it sends from the
store (alerting/delivery.py)."""

import hashlib
import secrets
from datetime import UTC, datetime

from audit.records import DISPATCHED, AlertEvent
from audit.store import alert_log


class DispatchNotRecordedError(Exception):
    """The audit store did not take the dispatch record: no worker could accept the task, so none was queued."""


def nonce_digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def dispatch_event_id(digest: str) -> str:
    # From the nonce alone: unique per dispatch and short enough for any alert id.
    return f"dispatch:{digest[:48]}"


def record(alert_id: str, channel: str, round_: int) -> str:
    """Record a `dispatched` event for a fresh nonce and return the nonce, which only its task may carry. Raises
    `DispatchNotRecordedError` when the store cannot hold it: then the task must not be queued."""
    store = alert_log()
    nonce = secrets.token_urlsafe(24)
    digest = nonce_digest(nonce)
    event = AlertEvent(
        dispatch_event_id(digest),
        alert_id,
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
    return nonce
