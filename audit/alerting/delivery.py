"""One delivery attempt of one alert on one channel, and what is recorded of it.

Every attempt appends an event to the audit store (`delivered`, `retrying`, `failed`, `dead_letter` or `skipped`)
with a deterministic id, so a task Celery delivers twice records once. Recording is best effort: an alert must
leave the building even when the audit store is away, so a failure to record is logged, never raised."""

import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from audit.alerting.channels import CHANNELS
from audit.alerting.channels.base import DeliveryError, NotConfiguredError
from audit.records import DELIVERY, AlertEvent, AlertRecord
from audit.store import get_store
from cio_kernel.contracts.alert import Alert
from cio_kernel.redaction import process_scrubber

log = logging.getLogger(__name__)

DELIVERED, RETRYING, FAILED, DEAD_LETTER, SKIPPED = "delivered", "retrying", "failed", "dead_letter", "skipped"


class RetryLaterError(Exception):
    def __init__(self, countdown_s: float, reason: str) -> None:
        super().__init__(reason)
        self.countdown_s = countdown_s


def backoff_s(attempt: int) -> float:
    """Exponential: the base, then twice it, four times it … (attempt 1 failed: wait the base)."""
    return float(settings.CIO_ALERT_RETRY_BACKOFF_S) * 2 ** max(0, attempt - 1)


def record_event(event: AlertEvent) -> None:
    event = replace(event, detail=process_scrubber().value(event.detail))
    try:
        get_store().add_alert_event(event)
    except Exception as exc:
        log.warning("alert %s: could not record %s on %s (%r)", event.alert_id, event.outcome, event.channel, exc)


def deliver(alert: Alert, channel: str, attempt: int, round_: int = 0) -> str:
    """Send `alert` on `channel` once. Returns the final outcome, or raises `RetryLaterError` for a transient
    failure with attempts left (`CIO_ALERT_MAX_ATTEMPTS`); the last transient failure is a dead letter."""
    started = time.monotonic()
    outcome, detail = DELIVERED, {}
    try:
        CHANNELS[channel].send(alert)
    except NotConfiguredError as exc:
        outcome, detail = SKIPPED, {"reason": str(exc)}
    except DeliveryError as exc:
        retry = exc.retry_may_help
        outcome = (RETRYING if attempt < settings.CIO_ALERT_MAX_ATTEMPTS else DEAD_LETTER) if retry else FAILED
        detail = {"error": process_scrubber().text(str(exc)), "retry_may_help": retry}
    except Exception as exc:  # a bug or an unexpected failure in a channel: treated as transient
        outcome = RETRYING if attempt < settings.CIO_ALERT_MAX_ATTEMPTS else DEAD_LETTER
        detail = {"error": process_scrubber().text(repr(exc)), "retry_may_help": True}
    detail["ms"] = round((time.monotonic() - started) * 1000, 1)
    if outcome == RETRYING:
        detail["next_attempt_in_s"] = backoff_s(attempt)
    record_event(
        AlertEvent(
            event_id=f"{alert.alert_id}:{channel}:{round_}:{attempt}",
            alert_id=alert.alert_id,
            ts=datetime.now(UTC),
            kind=DELIVERY,
            channel=channel,
            attempt=attempt,
            outcome=outcome,
            detail={**detail, "round": round_},
        )
    )
    level = logging.INFO if outcome in (DELIVERED, SKIPPED) else logging.WARNING
    log.log(level, "alert %s on %s (attempt %d): %s %s", alert.alert_id, channel, attempt, outcome, detail)
    if outcome == RETRYING:
        raise RetryLaterError(backoff_s(attempt), detail["error"])
    return outcome


def alert_of(record: AlertRecord) -> Alert:
    return Alert(
        alert_id=record.alert_id,
        ts=record.ts,
        severity=record.severity,
        source=record.source,
        title=record.title,
        detail=record.detail,
        trace_id=record.trace_id,
    )


def as_task_argument(alert: Alert) -> dict[str, Any]:
    return alert.model_dump(mode="json")
