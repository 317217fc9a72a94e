"""Recount the statistics' per-minute rollups from the stored decisions (audit/store/rollups.py): for a database
whose decisions were stored before the rollups existed (MongoDB; the Django database's migration counts them
itself), or to repair minutes after a failure the ingest could not make good (docs/audit.md, "Statistics").
Idempotent: a range recounted twice holds the same counts. Exit 0 when done, 2 when it cannot run.

`--since`/`--until` (ISO 8601, UTC when no offset is given) bound the minutes; `--all` is every stored decision's.
On the Django database it may run beside the ingest (each hour of minutes is recounted under a lock the ingest
waits for); on MongoDB, stop the ingest first or give a range it no longer adds to."""

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.store import decision_log
from audit.store.base import StoreUnavailableError


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", type=_when, help="the first minute to recount (the one this falls in)")
        parser.add_argument("--until", type=_when, help="the last minute to recount (default: now's)")
        parser.add_argument("--all", action="store_true", help="from the oldest stored decision")

    def handle(self, *args: Any, **options: Any) -> None:
        since, until = options["since"], options["until"] or datetime.now(UTC)
        if (since is None) == (not options["all"]):
            raise CommandError("give either --since or --all", returncode=2)
        if since is not None and since > until:
            raise CommandError("--since is after --until", returncode=2)
        try:
            counted = decision_log().rebuild_rollups(since, until)
        except StoreUnavailableError as exc:
            self.stderr.write(f"the rollups were not recounted: {exc}")
            raise SystemExit(2) from exc
        start = "the oldest decision" if since is None else since.isoformat()
        self.stdout.write(f"recounted the minutes from {start} through {until.isoformat()}: {counted} decisions")


def _when(value: str) -> datetime:
    ts = datetime.fromisoformat(value)
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
