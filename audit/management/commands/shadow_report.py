"""Compare shadow gates' decisions with what the serving CIO actually promoted (docs/deploy.md, "Shadow mode").

Shadow decisions come from the audit store (those audited under `cio.audit.decision.shadow.`); the promotions from
the stream shadow gates record `signals.trading.>` in (`CIO_SHADOW_SIGNALS`), so run it with a NATS identity that
may read that stream. Prints the counts per outcome (disagreements first), the shadow's reasons for rejecting what
was promoted, per strategy, and examples; `--json` prints the same as one JSON object. Exit 0, or 2 when the
promotions cannot be read (a report without them would call every approval a disagreement). The admin's shadow
report page shows the same report (`audit.shadow_report.build_report`)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.shadow_report import PromotionsUnreadableError, build_report, render
from cio_kernel.shadow import SHADOW_SIGNAL_STREAM


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
        try:
            report = build_report(
                until - _duration(options["since"]),
                until,
                gate_id=options["gate"],
                stream=options["stream"],
                slack=timedelta(seconds=options["slack"]),
                examples=options["examples"],
            )
        except PromotionsUnreadableError as exc:
            self.stderr.write(str(exc))
            raise SystemExit(2) from None
        if options["json"]:
            self.stdout.write(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
        else:
            self.stdout.write(render(report))
