"""Retention: remove decisions older than the retention period, each chain up to a gate's signed checkpoint signed
before it, after verifying what goes (audit/retention.py). Exit 0 when done, 1 when a chain kept its records
because they did not verify (they are evidence: run audit_verify), 2 when it cannot run.

On the Django database the command lifts the database's DELETE guard for its own transaction, which takes the
audit tables' owner's rights on PostgreSQL; on MongoDB run it as a user whose role may delete (docs/audit.md)."""

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from audit.checkpoints import trusted_keys
from audit.retention import prune
from audit.store import get_store


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--retention-days",
            type=float,
            default=settings.CIO_AUDIT_RETENTION_DAYS,
            help="keep this many days (default CIO_AUDIT_RETENTION_DAYS; the same value audit_verify accepts)",
        )
        parser.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["retention_days"]
        if days is None or days <= 0:
            self.stderr.write("no retention period (CIO_AUDIT_RETENTION_DAYS or --retention-days): nothing may go")
            raise SystemExit(2)
        if settings.CIO_AUDIT_RETENTION_DAYS is None or days < settings.CIO_AUDIT_RETENTION_DAYS:
            self.stderr.write(
                f"--retention-days {days:g} is shorter than CIO_AUDIT_RETENTION_DAYS (what audit_verify accepts): "
                "verification would report what goes as removed"
            )
            raise SystemExit(2)
        keys = trusted_keys(settings.CIO_AUDIT_PUBLIC_KEY, settings.CIO_AUDIT_PUBLIC_KEY_FILE)
        if keys is None:
            self.stderr.write("no trusted gate key (CIO_AUDIT_PUBLIC_KEY or CIO_AUDIT_PUBLIC_KEY_FILE)")
            raise SystemExit(2)
        outcomes = prune(get_store(), keys, datetime.now(UTC) - timedelta(days=days), dry_run=options["dry_run"])
        verb = "would remove" if options["dry_run"] else "removed"
        kept = 0
        for outcome in outcomes:
            assert outcome.through is not None
            if outcome.refused:
                kept += 1
                for finding in outcome.refused:
                    self.stdout.write(f"kept     {outcome.chain}: {finding.problem} at {finding.seq}: {finding.detail}")
                continue
            self.stdout.write(
                f"{verb:8} {outcome.removed} records of {outcome.chain} up to {outcome.through.seq} "
                f"(checkpoint signed {outcome.through.ts.isoformat()})"
            )
        if kept:
            self.stderr.write(f"{kept} chains kept their old records: they do not verify (run audit_verify)")
            raise SystemExit(1)
