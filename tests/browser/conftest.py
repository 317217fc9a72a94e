"""The cockpit in a real browser against the real thing: NATS with JetStream and Redis servers, a gate process, the
audit ingest (live feed on) and the web server as `make up` runs it (uvicorn with Channels websockets), on the test
database. One of each per module, and one chromium (tests/browser/harness.py): the module's tests share them, so
the whole folder stays within its time budget."""

import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.test.utils import override_settings

from audit.records import AlertRecord
from audit.store import alert_log
from deploy.servers import ServerProcess, free_port, nats_server, redis_server, wait_for_port
from tests.audit.ingest_helpers import ROOT, database_url, wait_for
from tests.browser.harness import ALERT_ID, FAST_HASHES, GATE_ID, INCIDENT_ID, PASSWORD, launch
from tests.control_plane.web import web_argv
from tests.factories import TEST_AUDIT_PUBLIC_KEY, TEST_PUBLIC_KEY, TEST_SIGNER, make_snapshot, write_audit_signing_key


@dataclass
class Stack:
    nats: ServerProcess
    redis: ServerProcess
    tmp: Path
    key_file: Path

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.nats.port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis.port}/0"


class Process:
    """A child process of ours (gate, ingest, web) with its log; `restart` keeps the port (the web's)."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, port: int | None = None) -> None:
        self.argv, self.env, self.log, self.port = argv, env, log, port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "Process":
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        if self.port is not None:
            wait_for_port(self.port, 30, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="module")
def browser_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("cockpit")
    nats = nats_server(free_port(), tmp / "nats", tmp / "nats.log").start()
    store = redis_server(free_port(), tmp / "redis", tmp / "redis.log").start()
    key_file = tmp / "policy-signing.key"
    key_file.write_text(base64.b64encode(TEST_SIGNER.private_key.private_bytes_raw()).decode())
    yield Stack(nats, store, tmp, key_file)
    store.stop()
    nats.stop()


@pytest.fixture(scope="module")
def officers(browser_stack: Stack, django_db_setup: None, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    """Two risk officers and an active v1 (the four-eyes path), a strategy and a symbol listed with limits, and a
    portfolio snapshot stored as the Strategist's listener stores it. Flushed when the module ends."""
    from django.contrib.auth.models import Group, Permission, User

    from core import roles
    from outages.models import IncidentCase
    from policies import services
    from strategist.inputs import store_portfolio
    from tests.factories import make_spec

    overrides = override_settings(
        NATS_URL=browser_stack.nats_url,
        REDIS_URL=browser_stack.redis_url,
        CIO_STRATEGIST_REDIS_URL=browser_stack.redis_url,
        CIO_ACTIVATION_TIMEOUT_S=1.0,
        CIO_POLICY_SIGNING_KEY_FILE=browser_stack.key_file,
        CIO_AUDIT_PUBLIC_KEY=TEST_AUDIT_PUBLIC_KEY,
        PASSWORD_HASHERS=FAST_HASHES,
    )
    with django_db_blocker.unblock(), overrides:
        roles.ensure_roles(Group, Permission)
        users = {}
        for name in ("officer1", "officer2"):
            users[name] = User.objects.create_user(name, password=PASSWORD, is_staff=True)
            users[name].groups.add(Group.objects.get(name=roles.RISK_OFFICER))
        spec = make_spec(
            max_total_exposure_usd=100_000.0,
            max_symbol_exposure_usd=50_000.0,
            max_drawdown_pct=0.1,
            max_daily_loss_usd=5_000.0,
            strategies={"momentum_1": {}},
            symbols={"BTCUSDT": {"max_symbol_exposure_usd": 40_000.0}},
        )
        v1 = services.propose(spec=spec.model_dump(mode="json", by_alias=True), by=users["officer1"], rationale="v1")
        services.approve(v1, by=users["officer2"])
        services.activate(v1, by=users["officer2"])
        client = redis.Redis.from_url(browser_stack.redis_url)
        snapshot = make_snapshot(
            positions={"BTCUSDT": (0.5, 30_000.0), "ETHUSDT": (3.0, 9_000.0)},
            ts=time.time(),
            drawdown=0.03,
            daily_pnl=-1_200.0,
        )
        store_portfolio(client, snapshot)
        client.close()
        now = datetime.now(UTC)
        alert = AlertRecord(ALERT_ID, now, "critical", "gate", "drawdown latch tripped", {}, None, now)
        alert_log().insert_alert(alert)
        IncidentCase.objects.create(
            incident_id=INCIDENT_ID,
            kind="gate_silent",
            gate_id="gate-gone",
            severity="critical",
            title="gate gate-gone silent",
            since=now,
            detected_at=now,
        )
        yield users
        call_command("flush", interactive=False, verbosity=0)


def _env(stack: Stack, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "NATS_URL": stack.nats_url,
        "REDIS_URL": stack.redis_url,
        "CIO_STATE_DIR": str(stack.tmp / "state"),
        "CIO_POLICY_SIGNING_KEY_FILE": str(stack.key_file),
        "CIO_AUDIT_PUBLIC_KEY": TEST_AUDIT_PUBLIC_KEY,
        "CIO_AUDIT_STORE": "django",
        "SECRET_KEY": settings.SECRET_KEY,  # the portfolio's seal, written here, verifies there
        **extra,
    }


@pytest.fixture(scope="module")
def gate(browser_stack: Stack, officers: dict[str, Any]) -> Iterator[Process]:
    """A gate process: it beats every 0.1 s (signed, so the cockpit counts it live) and hears changes by notice."""
    env = _env(
        browser_stack,
        CIO_GATE_ID=GATE_ID,
        CIO_AUDIT_SPOOL_DIR=str(browser_stack.tmp / "spool"),
        CIO_HEARTBEAT_INTERVAL_S="0.1",
        CIO_POLICY_REFRESH_S="3600",
        CIO_POLICY_MAX_AGE_S="7200",
        CIO_POLICY_PUBLIC_KEY=TEST_PUBLIC_KEY,
        CIO_POLICY_FLOOR_WAIT_S="0",
        CIO_AUDIT_SIGNING_KEY_FILE=str(write_audit_signing_key(browser_stack.tmp)),
        CIO_GATE_HEALTH_PORT=str(free_port()),
    )
    process = Process([sys.executable, "-m", "gate"], env, browser_stack.tmp / "gate.log").start()
    client = redis.Redis.from_url(browser_stack.redis_url)
    wait_for(lambda: client.get(f"gate:heartbeat:{GATE_ID}") is not None, 30, "the gate's first heartbeat")
    client.close()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def ingest(browser_stack: Stack, gate: Process) -> Iterator[Process]:
    """`manage.py audit_ingest` with its live feed on: what the gate decides reaches the store and the pages."""
    argv = [sys.executable, "manage.py", "audit_ingest", "--batch-size", "50", "--ack-wait", "5"]
    process = Process(argv, _env(browser_stack), browser_stack.tmp / "ingest.log").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def web(browser_stack: Stack, officers: dict[str, Any]) -> Iterator[Process]:
    port = free_port()
    env = _env(
        browser_stack, DJANGO_SETTINGS_MODULE="tests.control_plane.fast_hashing_settings", CIO_COCKPIT_PUSH_S="1"
    )
    process = Process(web_argv(port), env, browser_stack.tmp / "web.log", port).start()
    process.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    yield process
    process.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs its event loop in this thread; Django refuses database work beside a running loop.
    # Nothing here runs Django code on that loop (it only drives the browser), so the test's own database work
    # (pytest-django's set-up and tear-down) is allowed while the browser is open.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
        browser = launch(playwright)
        yield browser
        browser.close()
