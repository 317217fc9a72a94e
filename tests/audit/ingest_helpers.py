"""Driving the audit ingest as production runs it: audit events on a real JetStream stream, `manage.py
audit_ingest` as separate processes (killable), and the store counted from outside."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import nats
import nats.js.errors
from django.db import connection
from nats.aio.client import Client as NATS

from audit.ingest import DURABLE
from audit.records import DecisionRecord
from cio_kernel.audit_stream import audit_stream_config
from tests.jetstream import consumer_settled

ROOT = Path(__file__).resolve().parents[2]


async def create_stream(nc: NATS, **limits: Any) -> None:
    await nc.jetstream().add_stream(audit_stream_config(**limits))


async def publish_records(nc: NATS, records: Sequence[DecisionRecord], chunk: int = 200) -> None:
    """As a gate's outbox publishes them: `Nats-Msg-Id` = decision id, the chain link in headers."""
    js = nc.jetstream()
    for start in range(0, len(records), chunk):
        await asyncio.gather(
            *(
                js.publish(
                    r.audit_subject,
                    r.payload,
                    headers={"Nats-Msg-Id": r.decision_id, **(r.link.headers() if r.link else {})},
                )
                for r in records[start : start + chunk]
            )
        )


def gate_headers(record: DecisionRecord, msg_id: str | None = None) -> dict[str, str]:
    return {"Nats-Msg-Id": msg_id or record.decision_id, **(record.link.headers() if record.link else {})}


def publish_now(nats_url: str, records: Sequence[DecisionRecord], **stream_limits: Any) -> None:
    async def work() -> None:
        nc = await nats.connect(nats_url)
        try:
            try:
                await nc.jetstream().stream_info("CIO_AUDIT")
            except nats.js.errors.NotFoundError:
                await create_stream(nc, **stream_limits)
            await publish_records(nc, records)
        finally:
            await nc.close()

    asyncio.run(work())


def ingest_settled(nats_url: str) -> bool:
    """The ingest's durable consumer has settled (tests/jetstream.py): what the store holds now is final."""

    async def work() -> bool:
        nc = await nats.connect(nats_url)
        try:
            return await consumer_settled(nc, "CIO_AUDIT", DURABLE)
        finally:
            await nc.close()

    return asyncio.run(work())


def database_url() -> str:
    """The test database as a `DATABASE_URL` another process can open."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    host = quote(s["HOST"] or "", safe="")  # a socket folder is written URL-encoded
    return f"postgres://{quote(s['USER'])}:{quote(s['PASSWORD'] or '')}@{host}:{s['PORT'] or 5432}/{s['NAME']}"


class IngestProcess:
    """`python manage.py audit_ingest` in its own process, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path, *extra: str) -> None:
        self.log_path = log_path
        argv = [sys.executable, "manage.py", "audit_ingest", "--batch-size", "50", "--ack-wait", "5"]
        argv += ["--backlog-every", "1", "--stats-every", "1", "--no-live-feed", *extra]
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no clean-up, no last ack; whatever batch it was writing is abandoned mid-way."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(10)


def ingest_env(backend: str, nats_url: str, state_dir: Path, mongo_url: str | None = None) -> dict[str, str]:
    env = {
        "NATS_URL": nats_url,
        "DATABASE_URL": database_url(),
        "CIO_STATE_DIR": str(state_dir),
        "CIO_AUDIT_STORE": backend,
        "CIO_LOG_LEVEL": "INFO",
    }
    if mongo_url:
        env["MONGODB_URI"] = mongo_url
    return env


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.1) -> Any:
    """Poll another process's effect (the store's count) until it shows; the timeout only bounds a failure."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s}s")
        time.sleep(every_s)
