"""Celery tasks: one delivery per alert and channel (so channels never wait on each other), and the escalation
sweep beat runs every minute."""

from typing import Any

from celery import shared_task

from alerting import delivery, escalation

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
    return escalation.sweep()
