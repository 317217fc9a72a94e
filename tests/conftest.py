"""Fixtures that start real, throwaway servers (NATS with JetStream, Valkey) on free ports for each test."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import nats
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from deploy.servers import ServerProcess, free_port, nats_server, redis_server
from gate.config import GateSettings
from gate.runtime.clock import Clock
from gate.runtime.pipeline import DecisionPipeline
from gate.runtime.service import Gate
from tests.factories import TEST_PUBLIC_KEY, write_audit_signing_key
from tests.secured_stack import Secured

# Fixtures every folder may use, in one home each (no test module or conftest imports another conftest).
pytest_plugins = [
    "tests.plugins.control_plane",
    "tests.plugins.gate_processes",
    "tests.plugins.mongo",
    "tests.plugins.secured",
    "tests.plugins.otlp",
    "tests.plugins.database_pass",
]


@pytest.fixture(scope="session", autouse=True)
def _flush_lifts_the_audit_guard() -> Iterator[None]:
    """The database refuses to delete audit rows (audit/triggers.py). A transactional test's flush between tests
    lifts that guard inside its own transaction, as the tables' owner may (retention does the same), and puts it
    back before the transaction ends."""
    from django.db import transaction
    from django.db.backends.base.operations import BaseDatabaseOperations

    from audit import triggers

    flush = BaseDatabaseOperations.execute_sql_flush

    def execute_sql_flush(self: BaseDatabaseOperations, sql_list: list[str]) -> None:
        with (
            transaction.atomic(using=self.connection.alias),
            self.connection.cursor() as cursor,
            triggers.lifted(cursor.execute, self.connection.vendor),
        ):
            flush(self, sql_list)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseDatabaseOperations, "execute_sql_flush", execute_sql_flush)
        yield


@pytest.fixture
def nats_proc(tmp_path: Path) -> Iterator[ServerProcess]:
    port = free_port()
    proc = nats_server(port, tmp_path / "nats", tmp_path / "nats.log").start()
    yield proc
    proc.stop()


@pytest.fixture
def nats_url(nats_proc: ServerProcess) -> str:
    return f"nats://127.0.0.1:{nats_proc.port}"


@pytest.fixture
def redis_proc(tmp_path: Path) -> Iterator[ServerProcess]:
    port = free_port()
    proc = redis_server(port, tmp_path / "redis", tmp_path / "redis.log").start()
    yield proc
    proc.stop()


@pytest.fixture
def redis_url(redis_proc: ServerProcess) -> str:
    return f"redis://127.0.0.1:{redis_proc.port}/0"


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    yield client
    with contextlib.suppress(Exception):
        await client.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    with contextlib.suppress(Exception):
        await client.aclose()


@pytest.fixture
def gate_settings(nats_url: str, redis_url: str, tmp_path: Path) -> GateSettings:
    return GateSettings(
        nats_url=nats_url,
        redis_url=redis_url,
        gate_id="test-gate",
        audit_spool_dir=tmp_path / "spool",
        policy_refresh_s=0.5,
        policy_max_age_s=3.0,
        heartbeat_interval_s=0.2,
        fleet_heartbeat_interval_s=0.5,
        audit_ack_timeout_s=1.0,
        policy_public_key=TEST_PUBLIC_KEY,
        # No floor-learning wait: each test's spool is new, so every gate is brand-new (tests/integration/
        # test_policy_floor.py covers the wait itself).
        policy_floor_wait_s=0.0,
        audit_signing_key_file=write_audit_signing_key(tmp_path),
    )


@pytest.fixture
async def make_gate(gate_settings: GateSettings) -> AsyncIterator[Callable[..., Awaitable[Gate]]]:
    """Start gates in the test's event loop (settings overridable); every one is stopped at teardown."""
    started: list[Gate] = []

    async def start(
        clock: Clock | None = None,
        run_loops: bool = True,
        pipeline_type: type[DecisionPipeline] = DecisionPipeline,
        **overrides: object,
    ) -> Gate:
        settings = gate_settings.model_copy(update=overrides)
        instance = Gate(settings, clock=clock, run_loops=run_loops, pipeline_type=pipeline_type)
        await asyncio.wait_for(instance.start(), 20)
        started.append(instance)
        return instance

    yield start
    for instance in started:
        await asyncio.wait_for(instance.stop(), 30)


@pytest.fixture
async def gate(make_gate: Callable[..., Awaitable[Gate]]) -> Gate:
    """A gate running in the test's event loop, against the test's own NATS and Redis."""
    return await make_gate()


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Secured]:
    """NATS and Valkey started with the shipped permissions (tests/secured_stack.py), stopped after the test."""
    stack = Secured(tmp_path)
    yield stack
    stack.stop()


@pytest.fixture
def broker(redis_url: str) -> Iterator[str]:
    """This process's Celery app sends to the test's Redis (what `CIO_CELERY_BROKER_URL` does in a deployment)."""
    from cio_site.celery import app

    def point_at(url: str) -> None:
        app.conf.broker_url = url
        app._pool = None  # connections and producers for the previous broker are not reused
        app.amqp._producer_pool = None

    before = app.conf.broker_url
    point_at(redis_url)
    yield redis_url
    point_at(before)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    """SQLite tests use a file, not the shared-cache in-memory database: its table locks fail at once instead of
    waiting, so the concurrency tests would not exercise the production locking (IMMEDIATE transactions), and
    the audit ingest's store thread and other processes must see the same database."""
    from django.conf import settings as django_settings

    database = django_settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("db") / "control-plane-test.sqlite3")
