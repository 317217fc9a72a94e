"""Check the audit trail: every chain's links, and every chain against the gates' signed checkpoints. Exit 0 when
intact, 1 with one line per finding otherwise, 2 when it cannot check (no trusted gate key, checkpoints unreadable).

The latest checkpoint of each chain is read from JetStream (`CIO_AUDIT_CHECKPOINTS`, outside the store), so run it
with a NATS identity that may read that stream (the audit ingest's). Events of the last moments may not be stored
or signed yet: it waits up to `--settle` seconds for them before calling them missing or unproven. `--head
CHAIN=SEQ` (repeatable) or `--live-heads` (what live gates report in Redis) add heads to check the ends against.
`--no-stream` checks against the checkpoints kept in the store only: weaker (someone who can write the store can
remove the latest of them), and it says so."""

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from nats.js.errors import NotFoundError

from audit.checkpoints import latest_checkpoints, trusted_keys
from audit.store import get_store
from audit.verify import StoreVerification
from cio_kernel.audit_checkpoint import AuditCheckpoint
from cio_kernel.heartbeats import read_gate_heartbeats
from cio_kernel.nats_credentials import nats_credentials
from cio_kernel.numbers import whole_number
from cio_kernel.policy.signing import PolicyVerifier
from core.redis_clients import async_redis

_POLL_S = 0.5


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--head", action="append", default=[], metavar="CHAIN=SEQ")
        parser.add_argument("--live-heads", action="store_true", help="heads from the live gates' heartbeats")
        parser.add_argument(
            "--settle", type=float, default=10.0, help="seconds to wait for the last events and checkpoints"
        )
        parser.add_argument("--stream", default=settings.CIO_AUDIT_CHECKPOINT_STREAM)
        parser.add_argument("--no-stream", action="store_true", help="the store's checkpoints only (weaker)")

    def handle(self, *args: Any, **options: Any) -> None:
        keys = trusted_keys(settings.CIO_AUDIT_PUBLIC_KEY, settings.CIO_AUDIT_PUBLIC_KEY_FILE)
        if keys is None:
            self.stderr.write(
                "no trusted gate key (CIO_AUDIT_PUBLIC_KEY or CIO_AUDIT_PUBLIC_KEY_FILE): nothing can be proven"
            )
            raise SystemExit(2)
        heads = dict(_parse_head(value) for value in options["head"])
        if options["live_heads"]:
            live, unverified = asyncio.run(_live_heads(keys))
            for problem in unverified:
                self.stderr.write(f"--live-heads: not trusted: {problem}")
            heads.update({chain: seq for chain, seq in live.items() if seq > heads.get(chain, 0)})
        retained_from = None
        if settings.CIO_AUDIT_RETENTION_DAYS is not None:
            retained_from = datetime.now(UTC) - timedelta(days=settings.CIO_AUDIT_RETENTION_DAYS)
        verification = StoreVerification(get_store(), keys, retained_from, heads or None)
        if options["no_stream"]:
            self.stderr.write(
                "checking against the store's own checkpoints only: a store-level change that also removed the "
                "latest checkpoints is not found this way"
            )
            verification.run()
        else:
            self._against_the_stream(verification, options["stream"], options["settle"])
        report = verification.report()
        for finding in report.findings:
            where = f"{finding.chain or '-'} seq {finding.seq if finding.seq is not None else '-'}"
            self.stdout.write(f"{finding.problem:9} {where} {finding.decision_id or ''}: {finding.detail}")
        summary = (
            f"{report.chains} chains, {report.records} records ({report.vouched} vouched for by signed "
            f"checkpoints), {len(report.findings)} findings"
        )
        if not report.intact:
            self.stderr.write(f"audit trail NOT intact: {summary}")
            raise SystemExit(1)
        self.stdout.write(f"audit trail intact: {summary}")

    def _against_the_stream(self, verification: StoreVerification, stream: str, settle_s: float) -> None:
        # One event loop for the NATS reads, idle between them: the store (the Django ORM) is used synchronously.
        loop = asyncio.new_event_loop()
        try:
            try:
                nc = loop.run_until_complete(
                    nats.connect(
                        settings.NATS_URL,
                        **nats_credentials(),
                        name="cio-audit-verify",
                        inbox_prefix=settings.CIO_NATS_INBOX_PREFIX,
                        connect_timeout=3,
                        max_reconnect_attempts=2,
                    )
                )
            except Exception as exc:
                self.stderr.write(f"NATS is unreachable, so the gates' checkpoints cannot be read: {exc!r}")
                raise SystemExit(2) from exc
            try:

                def read() -> tuple[dict[str, AuditCheckpoint], list[str]]:
                    try:
                        return loop.run_until_complete(latest_checkpoints(nc, stream))
                    except NotFoundError:
                        return {}, []  # no gate has signed anything yet: every chain is unproven, and reported so
                    except Exception as exc:
                        self.stderr.write(f"the checkpoint stream {stream} cannot be read: {exc!r}")
                        raise SystemExit(2) from exc

                verification.run(*read())
                deadline = time.monotonic() + settle_s
                while verification.pending() and time.monotonic() < deadline:
                    time.sleep(_POLL_S)
                    verification.catch_up(read()[0])
            finally:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(nc.close())
        finally:
            loop.close()


def _parse_head(value: str) -> tuple[str, int]:
    chain, sep, seq = value.rpartition("=")
    number = whole_number(seq)
    if not sep or not chain or number is None:
        raise CommandError(f"--head takes CHAIN=SEQ, not {value!r}")
    return chain, number


async def _live_heads(keys: PolicyVerifier) -> tuple[dict[str, int], list[str]]:
    """Heads from the heartbeats that verify with a trusted gate key (signed, expiring, fresh), and why the others
    were not used: whoever holds the gate's Redis password could write any head there."""
    redis = async_redis(settings.REDIS_URL, 3)
    try:
        beats = await read_gate_heartbeats(redis, keys)
    except Exception as exc:
        raise CommandError(f"Redis is unreachable for --live-heads: {exc!r}") from exc
    finally:
        await redis.aclose()
    heads = {beat.audit_chain: beat.audit_seq for beat in beats.live if beat.audit_chain and beat.audit_seq}
    return heads, [f"gate:heartbeat:{u.gate_id}: {u.problem}" for u in beats.unverified]
