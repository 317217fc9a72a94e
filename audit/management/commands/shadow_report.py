"""Compare shadow gates' decisions with what the serving CIO actually promoted (docs/deploy.md, "Shadow mode").

Shadow decisions come from the audit store (those audited under `cio.audit.decision.shadow.`); the promotions from
the stream shadow gates record `signals.trading.>` in (`CIO_SHADOW_SIGNALS`), so run it with a NATS identity that
may read that stream. Prints the counts per outcome (disagreements first), the shadow's reasons for rejecting what
was promoted, per strategy, and examples; `--json` prints the same as one JSON object. Exit 0, or 2 when the
promotions cannot be read (a report without them would call every approval a disagreement)."""

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import orjson
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from nats.js.errors import NotFoundError

from audit.records import DecisionRecord
from audit.shadow_report import Promoted, compare, recorded_promotions, render
from audit.store import decision_log
from audit.store.decisions import MAX_PAGE, DecisionQuery
from cio_kernel.nats_credentials import nats_credentials
from cio_kernel.shadow import SHADOW_SIGNAL_STREAM, is_shadow_subject


def _duration(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    try:
        if text[-1] in units:
            return timedelta(seconds=float(text[:-1]) * units[text[-1]])
        return timedelta(seconds=float(text))
    except (ValueError, IndexError) as exc:
        raise CommandError(f"not a duration: {text!r} (say 90s, 30m, 24h or 7d)") from exc


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", default="24h", help="window length back from --until (90s, 30m, 24h, 7d)")
        parser.add_argument("--until", default=None, help="window end, ISO 8601 (default: now)")
        parser.add_argument("--gate", default=None, help="one shadow gate's id only")
        parser.add_argument("--stream", default=SHADOW_SIGNAL_STREAM, help="where the promotions were recorded")
        parser.add_argument(
            "--slack", type=float, default=60.0, help="seconds around the window a promotion is looked for in"
        )
        parser.add_argument("--examples", type=int, default=20, help="disagreements listed")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        until = datetime.fromisoformat(options["until"]) if options["until"] else datetime.now(UTC)
        if until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
        since = until - _duration(options["since"])
        slack = timedelta(seconds=options["slack"])
        try:
            promoted = asyncio.run(_recorded_promotions(options["stream"], since - slack, until + slack))
        except NotFoundError:
            self.stderr.write(f"no stream {options['stream']}: no shadow gate recorded promotions (docs/deploy.md)")
            raise SystemExit(2) from None
        except Exception as exc:
            self.stderr.write(f"promotions in {options['stream']} could not be read: {exc!r}")
            raise SystemExit(2) from None
        report = compare(_shadow_decisions(since, until, options["gate"]), promoted, since, until, options["examples"])
        if options["json"]:
            self.stdout.write(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
        else:
            self.stdout.write(render(report))


def _shadow_decisions(since: datetime, until: datetime, gate_id: str | None) -> Iterator[DecisionRecord]:
    log = decision_log()
    cursor: str | None = None
    while True:
        query = DecisionQuery(since=since, until=until, gate_id=gate_id, cursor=cursor, limit=MAX_PAGE)
        page = log.find_decisions(query)
        yield from (record for record in page.records if is_shadow_subject(record.audit_subject))
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


async def _recorded_promotions(stream: str, since: datetime, until: datetime) -> list[Promoted]:
    nc = await nats.connect(
        settings.NATS_URL,
        **nats_credentials(),
        name="cio-shadow-report",
        connect_timeout=3,
        max_reconnect_attempts=0,
    )
    try:
        return await recorded_promotions(nc, stream, since, until)
    finally:
        await nc.close()
