"""Check the audit trail's hash chains: exit 0 when intact, 1 with one line per finding otherwise.

`--head CHAIN=SEQ` (repeatable) or `--live-heads` (the `audit_chain`/`audit_seq` live gates report in Redis)
also find records cut from the end of a chain; run those once the ingest has caught up, or the events still on
their way are reported as a tail too."""

import asyncio
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.store import get_store
from audit.verify import verify_store
from cio_kernel.heartbeats import read_gate_heartbeats


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--head", action="append", default=[], metavar="CHAIN=SEQ")
        parser.add_argument("--live-heads", action="store_true", help="heads from the live gates' heartbeats")

    def handle(self, *args: Any, **options: Any) -> None:
        heads = dict(_parse_head(value) for value in options["head"])
        if options["live_heads"]:
            heads.update(asyncio.run(_live_heads()))
        report = verify_store(get_store(), heads or None)
        for finding in report.findings:
            where = f"{finding.chain or '-'} seq {finding.seq if finding.seq is not None else '-'}"
            self.stdout.write(f"{finding.problem:9} {where} {finding.decision_id or ''}: {finding.detail}")
        summary = f"{report.chains} chains, {report.records} records, {len(report.findings)} findings"
        if not report.intact:
            self.stderr.write(f"audit trail NOT intact: {summary}")
            raise SystemExit(1)
        self.stdout.write(f"audit trail intact: {summary}")


def _parse_head(value: str) -> tuple[str, int]:
    chain, sep, seq = value.rpartition("=")
    if not sep or not chain or not seq.isdigit():
        raise CommandError(f"--head takes CHAIN=SEQ, not {value!r}")
    return chain, int(seq)


async def _live_heads() -> dict[str, int]:
    redis = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
    try:
        beats = await read_gate_heartbeats(redis)
    except Exception as exc:
        raise CommandError(f"Redis is unreachable for --live-heads: {exc!r}") from exc
    finally:
        await redis.aclose()
    return {beat.audit_chain: beat.audit_seq for beat in beats if beat.audit_chain and beat.audit_seq}
