"""The alerting bridge (`manage.py alert_bridge`): every alert on `cio.alert.>` is kept in the audit store and
handed to every channel as its own Celery task.

Alerts matter most when things are broken, so nothing here waits on a part that may be down: the store's
failure does not stop delivery, and a **critical** alert that no channel has delivered within
`CIO_ALERT_DIRECT_EMAIL_AFTER_S` (the broker refused it, no worker is running, every worker is stuck) is emailed
by the bridge itself, straight through SMTP. Tested with the Celery worker stopped."""

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from pydantic import ValidationError

from audit.alerting import dedup
from audit.alerting.channels import email
from audit.alerting.delivery import DELIVERED, record_event
from audit.records import DELIVERY, AlertEvent, AlertRecord
from audit.store import AuditStore
from cio_kernel.contracts.alert import Alert, Severity
from cio_kernel.subjects import ALERTS

log = logging.getLogger(__name__)
QUEUE = "cio-alerting"
DIRECT = "email_direct"


class AlertBridge:
    def __init__(
        self,
        store: AuditStore,
        redis: Any,
        dispatch: Callable[[Alert], list[str]],
        *,
        dedup_window_s: float,
        direct_after_s: float,
        send_direct: Callable[[Alert], None] = email.send,
    ) -> None:
        self._store = store
        self._redis = redis
        self._dispatch = dispatch
        self._dedup_window_s = dedup_window_s
        self._direct_after_s = direct_after_s
        self._send_direct = send_direct
        self._watchdogs: dict[asyncio.Task[None], Alert] = {}
        self.counters: Counter[str] = Counter()

    async def subscribe(self, nc: NATS) -> None:
        await nc.subscribe(ALERTS, queue=QUEUE, cb=self.on_message)

    async def on_message(self, msg: Msg) -> None:
        try:
            alert = Alert.model_validate_json(msg.data)
        except ValidationError as exc:
            self.counters["invalid"] += 1
            log.warning("ignored an invalid alert on %s (%d field errors)", msg.subject, exc.error_count())
            return
        await self.handle(alert)

    async def handle(self, alert: Alert) -> str:
        """Keep, deduplicate, dispatch; returns what became of it: `dispatched`, `duplicate` or `direct`."""
        self.counters["received"] += 1
        try:
            first = await dedup.first_of(self._redis, alert, self._dedup_window_s)
        except Exception as exc:  # Redis away: deliver rather than risk swallowing an alert
            log.warning("alert %s: deduplication unavailable (%r); delivering", alert.alert_id, exc)
            first = None
        await self._keep(alert, first)
        if first is not None and first != alert.alert_id:
            self.counters["duplicates"] += 1
            return "duplicate"
        try:
            await asyncio.to_thread(self._dispatch, alert)
        except Exception as exc:
            self.counters["dispatch_failed"] += 1
            log.error("alert %s: the broker did not take its deliveries (%r)", alert.alert_id, exc)
            if alert.severity is Severity.CRITICAL:
                await self._direct(alert, f"the broker refused the deliveries: {type(exc).__name__}")
                return "direct"
            return "undelivered"
        self.counters["dispatched"] += 1
        if alert.severity is Severity.CRITICAL:
            task = asyncio.create_task(self._watch(alert, self._direct_after_s))
            self._watchdogs[task] = alert
            task.add_done_callback(lambda done: self._watchdogs.pop(done, None))
        return "dispatched"

    async def _keep(self, alert: Alert, duplicate_of: str | None) -> None:
        record = AlertRecord(
            alert_id=alert.alert_id,
            ts=alert.ts,
            severity=alert.severity.value,
            source=alert.source,
            title=alert.title,
            detail=alert.detail,
            trace_id=alert.trace_id,
            received_at=datetime.now(UTC),
            duplicate_of=duplicate_of if duplicate_of != alert.alert_id else None,
        )
        try:
            await asyncio.to_thread(self._store.insert_alert, record)
        except Exception as exc:
            log.warning("alert %s not kept in the audit store (%r); delivering it anyway", alert.alert_id, exc)

    async def _watch(self, alert: Alert, after_s: float) -> None:
        """Critical: if no channel has delivered it in time, email it from here."""
        await asyncio.sleep(after_s)
        try:
            events = await asyncio.to_thread(self._store.alert_events, [alert.alert_id])
            delivered = any(e.kind == DELIVERY and e.outcome == DELIVERED for e in events)
        except Exception:
            delivered = False  # cannot tell: sending twice beats not sending
        if not delivered:
            await self._direct(alert, f"no channel delivered it within {self._direct_after_s:g} s")

    async def _direct(self, alert: Alert, why: str) -> None:
        self.counters["direct"] += 1
        log.error("alert %s: %s; emailing it directly", alert.alert_id, why)
        try:
            await asyncio.to_thread(self._send_direct, alert)
            outcome, detail = DELIVERED, {"why": why}
        except Exception as exc:
            outcome, detail = "failed", {"why": why, "error": repr(exc)}
            log.error("alert %s: the direct email failed too (%r)", alert.alert_id, exc)
        await asyncio.to_thread(
            record_event,
            AlertEvent(
                f"{alert.alert_id}:{DIRECT}", alert.alert_id, datetime.now(UTC), DELIVERY, DIRECT, 1, outcome, detail
            ),
        )

    async def drain(self) -> None:
        """On shutdown: check every critical alert still being watched now, instead of after its wait, so none
        loses its fallback to the bridge stopping."""
        pending = list(self._watchdogs.items())
        for task, _ in pending:
            task.cancel()
        await asyncio.gather(*(self._watch(alert, 0) for _, alert in pending), return_exceptions=True)
