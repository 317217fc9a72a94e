"""The alerting bridge (`manage.py alert_bridge`): every alert on `cio.alert.>` is kept in the audit store and
handed to every channel as its own Celery task.

Alerts matter most when things are broken, so nothing here waits on a part that may be down: the store's
failure does not stop delivery, and a **critical** alert that no channel has delivered within
`CIO_ALERT_DIRECT_EMAIL_AFTER_S` (the broker refused it, no worker is running, every worker is stuck) is emailed
by the bridge itself, straight through SMTP. Tested with the Celery worker stopped.

No credential but the bridge's own decides that an alert is a repeat (alerting/dedup.py), and only a
delivery that the bridge's dispatch produced counts for the fallback: the broker can drop or forge tasks, and a
dropped one still ends in the direct email (alerting/dispatch.py). Issue 17."""

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from pydantic import ValidationError

from alerting import escalation
from alerting.channels.email import EmailChannel
from alerting.dedup import Deduplicator, Verdict
from alerting.delivery import DELIVERED, alert_of, record_event
from alerting.dispatch import DispatchNotRecordedError
from audit.records import ACKNOWLEDGED, DELIVERY, DISPATCHED, ESCALATED, AlertEvent, AlertRecord
from audit.store.alerts import AlertLog
from cio_kernel.alerting import make_alert
from cio_kernel.contracts.alert import Alert, Severity
from cio_kernel.subjects import ALERTS

log = logging.getLogger(__name__)
QUEUE = "cio-alerting"
DIRECT = "email_direct"
SOURCE = "alerting-bridge"
TAMPER_ALERT_EVERY_S = 60.0
EMAIL = EmailChannel()


def genuinely_delivered(events: list[AlertEvent], channel: str | None = None, round_: int | None = None) -> bool:
    """A channel (`channel`, when given) delivered it for one of its own dispatches (of `round_`, when given), not
    merely: some record says `delivered`."""
    dispatches = {
        e.event_id for e in events if e.kind == DISPATCHED and (round_ is None or e.detail.get("round") == round_)
    }
    return any(
        e.kind == DELIVERY
        and e.outcome == DELIVERED
        and e.detail.get("dispatch") in dispatches
        and (channel is None or e.channel == channel)
        for e in events
    )


def reached_on_call(events: list[AlertEvent], round_: int | None = None) -> bool:
    """What stands the direct email down. With email configured, only a genuine email delivery: the broker's
    identity can drop the email task alone and let a Grafana annotation or an OpenTelemetry record through, and
    neither pages anyone. Without email, any channel's genuine delivery (the direct email could not leave anyway)."""
    return genuinely_delivered(events, EMAIL.name if EMAIL.configured() else None, round_)


def direct_event_id(alert_id: str, round_: int = 0) -> str:
    return f"{alert_id}:{DIRECT}" if round_ == 0 else f"{alert_id}:{DIRECT}:{round_}"


class AlertBridge:
    def __init__(
        self,
        store: AlertLog,
        redis: Any,
        dispatch: Callable[[Alert, int], list[str]],
        *,
        dedup_window_s: float,
        direct_after_s: float,
        send_direct: Callable[[Alert], None] = EMAIL.send,
        dedup_secret: str | bytes | None = None,
        escalate_every_s: float | None = None,
    ) -> None:
        self._store = store
        self._dedup = Deduplicator(redis, dedup_secret or settings.SECRET_KEY, dedup_window_s)
        self._dispatch = dispatch
        self._direct_after_s = direct_after_s
        self._send_direct = send_direct
        self._watchdogs: dict[asyncio.Task[None], Alert] = {}
        self._tamper_alerted_at: float | None = None
        self._escalate_every_s = escalate_every_s
        self._escalator: asyncio.Task[None] | None = None
        self.counters: Counter[str] = Counter()

    async def subscribe(self, nc: NATS) -> None:
        await nc.subscribe(ALERTS, queue=QUEUE, cb=self.on_message)
        if self._escalate_every_s and self._escalator is None:
            self._escalator = asyncio.create_task(self._escalate_forever(self._escalate_every_s))

    async def _escalate_forever(self, every_s: float) -> None:
        while True:
            try:
                await self.escalate()
            except Exception as exc:  # the store away for a moment: the next pass tries again
                log.warning("escalation pass failed (%r)", exc)
            await asyncio.sleep(every_s)

    async def escalate(self, now: datetime | None = None) -> int:
        """One escalation pass run here, beside beat's: beat's sweep travels through the broker, whose identity can
        drop it, and so can it drop a round's deliveries. So the bridge sweeps too (rounds have deterministic ids:
        two sweeps escalate once), then emails directly every round, whoever dispatched it, that no channel
        genuinely delivered within `direct_after_s`. Returns how many rounds it emailed."""
        now = now or datetime.now(UTC)
        for alert, round_ in await asyncio.to_thread(escalation.sweep, now):
            await asyncio.to_thread(self._dispatch, alert, round_)
        late = await asyncio.to_thread(self._undelivered_rounds, now)
        for record, round_ in late:
            why = f"escalation round {round_}: no channel delivered it within {self._direct_after_s:g} s"
            await self._direct(alert_of(record), why, round_)
        return len(late)

    def _undelivered_rounds(self, now: datetime) -> list[tuple[AlertRecord, int]]:
        every = timedelta(seconds=settings.CIO_ALERT_ESCALATE_AFTER_S)
        rounds = settings.CIO_ALERT_ESCALATIONS
        # Unacknowledged critical originals, every one of them (rounds + 1: those with all their rounds done too).
        alerts = self._store.escalation_candidates(since=now - every * (rounds + 2), rounds=rounds + 1)
        history: dict[str, list[AlertEvent]] = {}
        for event in self._store.alert_events([a.alert_id for a in alerts]):
            history.setdefault(event.alert_id, []).append(event)
        wait = timedelta(seconds=self._direct_after_s)
        late = []
        for alert in alerts:
            events = history.get(alert.alert_id, [])
            emailed = {e.event_id for e in events if e.channel == DIRECT}
            for event in events:
                round_ = event.detail.get("round") if event.kind == ESCALATED else None
                if not isinstance(round_, int) or now - event.ts < wait:
                    continue
                if direct_event_id(alert.alert_id, round_) not in emailed and not reached_on_call(events, round_):
                    late.append((alert, round_))
        return late

    async def on_message(self, msg: Msg) -> None:
        try:
            alert = Alert.model_validate_json(msg.data)
        except ValidationError as exc:
            self.counters["invalid"] += 1
            log.warning("ignored an invalid alert on %s (%d field errors)", msg.subject, exc.error_count())
            return
        await self.handle(alert)

    async def handle(self, alert: Alert, *, deduplicate: bool = True) -> str:
        """Keep, deduplicate, dispatch; returns what became of it: `dispatched`, `duplicate`, `direct` or
        `undelivered`."""
        self.counters["received"] += 1
        verdict = Verdict(None)
        if deduplicate:
            try:
                verdict = await self._dedup.first_of(alert)
            except Exception as exc:  # Redis away: deliver rather than risk swallowing an alert
                log.warning("alert %s: deduplication unavailable (%r); delivering", alert.alert_id, exc)
        first = verdict.first
        if first is not None and first != alert.alert_id and await self._acknowledged(first):
            # Alert sources are not authenticated on `cio.alert.>`: someone could raise a gate's title first and
            # have it acknowledged, so that the gate's real alert would be a silent repeat of it. After an
            # acknowledgement a repeat is news: it opens a window of its own and is delivered.
            self.counters["after_acknowledged"] += 1
            first = None
            try:
                await self._dedup.reopen(alert)
            except Exception as exc:
                log.warning("alert %s: could not reopen its deduplication window (%r)", alert.alert_id, exc)
        kept = await self._keep(alert, first)
        if first is not None and first != alert.alert_id:
            self.counters["duplicates"] += 1
            return "duplicate"
        try:
            return await self._deliver(alert, kept)
        finally:
            if verdict.tampered is not None:
                await self._report_tampering(alert, verdict.tampered)

    async def _deliver(self, alert: Alert, kept: bool) -> str:
        if not kept:  # the workers deliver only what the store holds: this one leaves from here, whatever its severity
            await self._direct(alert, "the audit store did not keep it")
            return "direct"
        try:
            await asyncio.to_thread(self._dispatch, alert, 0)
        except DispatchNotRecordedError as exc:
            self.counters["dispatch_failed"] += 1
            await self._direct(alert, f"the audit store did not take its dispatch: {exc}")
            return "direct"
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

    async def _report_tampering(self, alert: Alert, why: str) -> None:
        """Someone wrote a deduplication key that is not a window of ours: a critical alert of our own, at most one
        a minute per bridge (never deduplicated, so a planted key cannot hold it back either)."""
        self.counters["dedup_tampered"] += 1
        log.error("alert %s: its deduplication key held something the bridge did not write (%s)", alert.alert_id, why)
        now = time.monotonic()
        if self._tamper_alerted_at is not None and now - self._tamper_alerted_at < TAMPER_ALERT_EVERY_S:
            return
        self._tamper_alerted_at = now
        report = make_alert(
            Severity.CRITICAL,
            SOURCE,
            "alert deduplication key tampered with",
            {"why": why, "alert_id": alert.alert_id, "severity": alert.severity.value, "source": alert.source},
        )
        await self.handle(report, deduplicate=False)

    async def _acknowledged(self, alert_id: str) -> bool:
        """Whether a person acknowledged `alert_id`; True when the store cannot say (deliver rather than swallow)."""
        try:
            events = await asyncio.to_thread(self._store.alert_events, [alert_id])
        except Exception as exc:
            log.warning("alert %s: cannot read whether it was acknowledged (%r); delivering its repeat", alert_id, exc)
            return True
        return any(event.kind == ACKNOWLEDGED for event in events)

    async def _keep(self, alert: Alert, duplicate_of: str | None) -> bool:
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
            return False
        return True

    async def _watch(self, alert: Alert, after_s: float) -> None:
        """Critical: if no channel has delivered it in time, email it from here."""
        await asyncio.sleep(after_s)
        try:
            events = await asyncio.to_thread(self._store.alert_events, [alert.alert_id])
            delivered = reached_on_call(events, 0)
        except Exception:
            delivered = False  # cannot tell: sending twice beats not sending
        if not delivered:
            await self._direct(alert, f"no channel delivered it within {self._direct_after_s:g} s")

    async def _direct(self, alert: Alert, why: str, round_: int = 0) -> None:
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
                direct_event_id(alert.alert_id, round_),
                alert.alert_id,
                datetime.now(UTC),
                DELIVERY,
                DIRECT,
                1,
                outcome,
                {**detail, **({"round": round_} if round_ else {})},
            ),
        )

    async def drain(self) -> None:
        """On shutdown: check every critical alert still being watched now, instead of after its wait, so none
        loses its fallback to the bridge stopping."""
        if self._escalator is not None:
            self._escalator.cancel()
        pending = list(self._watchdogs.items())
        for task, _ in pending:
            task.cancel()
        await asyncio.gather(*(self._watch(alert, 0) for _, alert in pending), return_exceptions=True)
