"""Celery tasks: one delivery per alert and channel (so channels never wait on each other), and the escalation
sweep beat runs every minute; `dispatch` queues the deliveries, for the bridge and for the sweep."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from celery import shared_task

from alerting import delivery, escalation
from alerting.channels import registry
from alerting.dispatch import record as record_dispatch
from cio_kernel.contracts.alert import Alert

DELIVER = "alerting.deliver"
ESCALATE = "alerting.escalate"
QUEUE = "alerts"


@shared_task(bind=True, name=DELIVER, max_retries=None, acks_late=True)
def deliver(
    self: Any, alert_id: Any = None, channel: Any = None, round_: Any = 0, nonce: Any = None, *_: Any, **__: Any
) -> str:
    """Only ids and the dispatch's nonce travel through the broker; a task of any other shape is refused and
    recorded (not rejected by Celery's argument check, which would leave no trace in the audit store)."""
    try:
        return delivery.deliver_dispatched(alert_id, channel, round_, nonce, self.request.retries + 1)
    except delivery.RetryLaterError as exc:  # only raised while attempts remain; the last is a dead letter
        raise self.retry(exc=exc, countdown=exc.countdown_s) from exc


@shared_task(name=ESCALATE)
def escalate() -> int:
    return escalate_due()


def dispatch(alert: Alert, round_: int = 0, only: Iterable[str] | None = None) -> list[str]:
    """Record, then queue, one delivery per channel (every channel, configured or not: an unconfigured one records
    `skipped`, so the gap shows in admin). Raises `DispatchNotRecordedError` when the store cannot hold the records
    and the broker's error when it cannot take the tasks (the caller falls back)."""
    sent = []
    for channel in only or registry.names():
        # The record first, always: a task queued before its record exists is one no worker can tell from a forgery.
        nonce = record_dispatch(alert.alert_id, channel, round_)
        deliver.apply_async(args=[alert.alert_id, channel, round_, nonce], queue=QUEUE, retry=False)
        sent.append(channel)
    return sent


def escalate_due(now: datetime | None = None) -> int:
    """Sweep, then dispatch every round the sweep took; returns how many alerts were sent again."""
    due = escalation.sweep(now)
    for alert, round_ in due:
        dispatch(alert, round_)
    return len(due)
