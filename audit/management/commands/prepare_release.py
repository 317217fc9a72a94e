"""Prepare a release (the Kubernetes migrations Job, deploy/k8s): Django's migrations, the audit store's indexes
and its vector search index (through the driver), and the audit streams on NATS with the stated window, rate and
replicas (`CIO_AUDIT_STREAM_RETENTION_HOURS`, `CIO_AUDIT_EXPECTED_RATE_PER_DAY`, `CIO_AUDIT_REPLICAS`).
Idempotent: run again, it changes nothing. Any step that fails stops it with exit 1 (the release must not go on).
Run it under the `release` NATS identity (deploy/access.py)."""

import asyncio
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from audit.release import ensure_audit_streams
from audit.store import get_store
from audit.store.base import StoreUnavailableError
from core.nats_connect import connect_once


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=options.get("verbosity", 1))
        store = get_store()
        try:
            store.ensure_schema()
            self.stdout.write(f"audit store ({store.name}): indexes ensured; {store.ensure_search_index()}")
        except StoreUnavailableError as exc:
            raise CommandError(str(exc)) from exc
        try:
            report = asyncio.run(self._streams())
        except Exception as exc:  # any NATS failure stops the release, with what failed
            raise CommandError(f"the audit streams could not be prepared: {exc!r}") from exc
        for line in report:
            self.stdout.write(line)

    async def _streams(self) -> list[str]:
        nc = await connect_once("cio-prepare-release", 5)
        try:
            return await ensure_audit_streams(
                nc,
                settings.CIO_AUDIT_STREAM_RETENTION_HOURS,
                settings.CIO_AUDIT_EXPECTED_RATE_PER_DAY,
                settings.CIO_AUDIT_REPLICAS,
                settings.CIO_AUDIT_STREAM,
            )
        finally:
            await nc.close()
