"""Celery tasks: one delivery per alert and channel (so channels never wait on each other), and the escalation
sweep beat runs every minute."""

from typing import Any

from celery import shared_task

from audit.alerting import delivery, escalation
from cio_kernel.contracts.alert import Alert

DELIVER = "alerting.deliver"
ESCALATE = "alerting.escalate"
QUEUE = "alerts"


@shared_task(bind=True, name=DELIVER, max_retries=None, acks_late=True)
def deliver(self: Any, alert: dict[str, Any], channel: str, round_: int = 0) -> str:
    try:
        return delivery.deliver(Alert.model_validate(alert), channel, self.request.retries + 1, round_)
    except delivery.RetryLaterError as exc:  # only raised while attempts remain; the last is a dead letter
        raise self.retry(exc=exc, countdown=exc.countdown_s) from exc


@shared_task(name=ESCALATE)
def escalate() -> int:
    return escalation.sweep()
