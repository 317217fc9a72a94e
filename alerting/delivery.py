"""One delivery attempt of one alert on one channel, and what is recorded of it.

Every attempt appends an event to the audit store (`delivered`, `retrying`, `failed`, `dead_letter` or `skipped`)
with a deterministic id, so a task Celery delivers twice records once. Recording is best effort: an alert must
leave the building even when the audit store is away, so a failure to record is logged, never raised.

A task from the broker is only a request: `deliver_dispatched` sends nothing unless the store holds the dispatch
it claims (same alert, channel, round and nonce), and then sends the alert as the store kept it, never anything
from the message. Anything else is refused and recorded as `refused` (alerting/dispatch.py)."""

import hashlib
import hmac
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from alerting.channels import registry
from alerting.channels.base import DeliveryError, NotConfiguredError
from alerting.dispatch import dispatch_event_id, nonce_digest
from audit.records import DELIVERY, DISPATCHED, REFUSED, AlertEvent, AlertRecord
from audit.store import alert_log
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
        alert_log().add_alert_event(event)
    except Exception as exc:
        log.warning("alert %s: could not record %s on %s (%r)", event.alert_id, event.outcome, event.channel, exc)


def deliver(alert: Alert, channel: str, attempt: int, round_: int = 0, dispatch_id: str | None = None) -> str:
    """Send `alert` on `channel` once. Returns the final outcome, or raises `RetryLaterError` for a transient
    failure with attempts left (`CIO_ALERT_MAX_ATTEMPTS`); the last transient failure is a dead letter."""
    started = time.monotonic()
    outcome, detail = DELIVERED, {}
    try:
        registry.get(channel).send(alert)
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
            detail={**detail, "round": round_, **({"dispatch": dispatch_id} if dispatch_id else {})},
        )
    )
    level = logging.INFO if outcome in (DELIVERED, SKIPPED) else logging.WARNING
    log.log(level, "alert %s on %s (attempt %d): %s %s", alert.alert_id, channel, attempt, outcome, detail)
    if outcome == RETRYING:
        raise RetryLaterError(backoff_s(attempt), detail["error"])
    return outcome


def _refuse(alert_id: str, channel: str, round_: Any, nonce: str, why: str) -> str:
    # Deterministic per claim, so a forged task replayed a thousand times is one record.
    claim = hashlib.sha256(f"{alert_id}\x00{channel}\x00{round_}\x00{nonce}".encode()).hexdigest()
    log.warning("refused a delivery task for alert %.64s on %.40s: %s", alert_id, channel, why)
    record_event(
        AlertEvent(
            f"refused:{claim[:48]}",
            alert_id[:64],
            datetime.now(UTC),
            REFUSED,
            channel[:40] or None,
            0,
            REFUSED,
            {"why": why, "round": round_ if isinstance(round_, int) else None},
        )
    )
    return REFUSED


def deliver_dispatched(alert_id: Any, channel: Any, round_: Any, nonce: Any, attempt: int) -> str:
    """A delivery task as the broker handed it over: delivered only when it is the bridge's own dispatch."""
    if isinstance(alert_id, dict):  # the shape before issue 17 (the whole alert in the message): named, refused
        alert_id, nonce = alert_id.get("alert_id"), None
    alert_id, channel = str(alert_id), str(channel)
    if not (isinstance(round_, int) and isinstance(nonce, str) and channel in registry and 0 < len(alert_id) <= 64):
        return _refuse(alert_id, channel, round_, repr(nonce)[:80], "not a delivery task of this version")
    store = alert_log()
    digest = nonce_digest(nonce)
    try:
        dispatched = [
            e
            for e in store.alert_events([alert_id])
            if e.kind == DISPATCHED
            and e.channel == channel
            and e.detail.get("round") == round_
            and hmac.compare_digest(str(e.detail.get("nonce_sha256", "")), digest)
        ]
        record = store.get_alert(alert_id) if dispatched else None
    except Exception as exc:  # cannot tell whether it is genuine: wait for the store (a critical one has its fallback)
        log.warning("alert %.64s on %s: the audit store cannot confirm the dispatch (%r)", alert_id, channel, exc)
        if attempt < settings.CIO_ALERT_MAX_ATTEMPTS:
            raise RetryLaterError(backoff_s(attempt), "the audit store is unavailable") from exc
        return DEAD_LETTER
    if record is None:
        return _refuse(alert_id, channel, round_, nonce, "no dispatch of this alert, channel and round has that nonce")
    return deliver(alert_of(record), channel, attempt, round_, dispatch_event_id(digest))


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
