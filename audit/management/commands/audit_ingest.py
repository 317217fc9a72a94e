"""Run the audit ingest: JetStream `CIO_AUDIT` into the configured audit store, until SIGTERM/SIGINT.

Waits for NATS and for the stream (the gate creates it), reconnects forever, and logs its counters every
`--stats-every` seconds. Several may run at once: they share the durable consumer (audit/ingest.py)."""

import asyncio
import contextlib
import logging
import signal
from typing import Any

import nats
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from audit import incidents
from audit.incidents import RejectionBurstDetector
from audit.ingest import AuditIngest
from audit.live_feed import publish_batch
from audit.store import get_store
from cio_kernel.alerting import AlertPublisher
from cio_kernel.contracts.latch import LatchNotice
from cio_kernel.nats_credentials import nats_credentials
from cio_kernel.subjects import RISK_LATCH

log = logging.getLogger("audit.ingest")


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="events per store write")
        parser.add_argument("--stream", default=settings.CIO_AUDIT_STREAM)
        parser.add_argument(
            "--ack-wait", type=float, default=30.0, help="seconds before a batch a crashed ingest held is redelivered"
        )
        parser.add_argument("--backlog-every", type=float, default=30.0, help="seconds between backlog checks")
        parser.add_argument("--stats-every", type=float, default=60.0, help="seconds between counter log lines")
        parser.add_argument("--burst-threshold", type=int, default=20, help="rejections of one strategy that …")
        parser.add_argument("--burst-window", type=float, default=60.0, help="… within this many seconds: an incident")
        parser.add_argument("--no-live-feed", action="store_true", help="do not stream stored decisions to admin")

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(self._run(options))

    async def _run(self, options: dict[str, Any]) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        store = get_store()
        await asyncio.to_thread(store.ensure_schema)
        nc = await nats.connect(
            settings.NATS_URL,
            **nats_credentials(),
            name="cio-audit-ingest",
            max_reconnect_attempts=-1,
            reconnect_time_wait=1.0,
            inbox_prefix=settings.CIO_NATS_INBOX_PREFIX,
        )
        ingest = AuditIngest(
            nc,
            store,
            stream=options["stream"],
            batch_size=options["batch_size"],
            ack_wait_s=options["ack_wait"],
            on_stored=None if options["no_live_feed"] else publish_batch,
            bursts=RejectionBurstDetector(options["burst_threshold"], options["burst_window"]),
            alerts=AlertPublisher(nc.publish, "audit-ingest"),
            expected_rate_per_day=settings.CIO_AUDIT_EXPECTED_RATE_PER_DAY,
        )

        async def on_latch(msg: Msg) -> None:
            try:
                notice = LatchNotice.model_validate_json(msg.data)
            except ValidationError:
                log.warning("audit ingest: an unreadable latch notice on %s", msg.subject)
                return
            await ingest.record_incident(incidents.from_latch_notice(notice))

        await nc.subscribe(RISK_LATCH, queue="cio-audit-ingest", cb=on_latch)
        try:
            while not stop.is_set():
                try:
                    await ingest.start()
                    break
                except NotFoundError:
                    log.warning("audit ingest: stream %s does not exist yet (gates create it); waiting", ingest.stream)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 2.0)
            if stop.is_set():
                return
            log.info("audit ingest: %s -> %s store, batches of %d", ingest.stream, store.name, ingest.batch_size)
            stats = asyncio.create_task(self._stats(ingest, stop, options["stats_every"]))
            await ingest.run(stop, backlog_every_s=options["backlog_every"])
            stats.cancel()
        finally:
            await ingest.close()
            with contextlib.suppress(Exception):
                await nc.drain()
            log.info("audit ingest: stopped; %s", ingest.counters)

    @staticmethod
    async def _stats(ingest: AuditIngest, stop: asyncio.Event, every: float) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            log.info("audit ingest: %s", ingest.counters)
