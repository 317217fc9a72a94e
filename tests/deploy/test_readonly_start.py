"""Issue 20 §1: with no container runtime where tests run, each workload is started the way the image starts it
(tests/deploy/sandbox.py: its command from deploy/workloads.py, as uid/gid 10001, in /app, the source tree and
the venv read-only, only its declared paths writable, the Dockerfile's environment) and shown serving: the gate
answers an intent over real NATS, the ingest stores the gate's audit event in the database, the web answers
`/api/health`. And the sandbox is shown to be real: a write anywhere undeclared is refused."""

import asyncio
import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest

from deploy.servers import free_port
from deploy.workloads import APP_DIR, IMAGE_UID, WORKLOADS, workload
from tests.deploy.dockerfile import ROOT
from tests.deploy.sandbox import Sandbox, own_folder, unavailable
from tests.factories import TEST_AUDIT_PUBLIC_KEY, TEST_PUBLIC_KEY, live_intent_body, make_spec, write_audit_signing_key
from tests.integration.helpers import activate, request

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(unavailable() is not None, reason=f"sandbox: {unavailable()}")]

# Each argument: a folder the probe tries to create a file in; it reports "ok" or the errno's name.
PROBE = """
import errno, json, os, sys
result = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "cwd": os.getcwd(), "writes": {}}
for folder in sys.argv[1:]:
    try:
        with open(os.path.join(folder, "probe-" + str(os.getpid())), "x") as handle:
            handle.write("written from the sandbox")
        result["writes"][folder] = "ok"
    except OSError as exc:
        result["writes"][folder] = errno.errorcode[exc.errno]
print(json.dumps(result))
"""
# Never writable in any workload: the source, its packages, the root, system folders, the venv, the state parent.
UNDECLARED = (APP_DIR, f"{APP_DIR}/gate", f"{APP_DIR}/cio_site", "/", "/etc", "/usr/local", "/var/lib/cio", sys.prefix)
GATE_ID = "image-gate"


@pytest.mark.parametrize("name", [w.name for w in WORKLOADS])
def test_only_the_declared_paths_are_writable(name: str, tmp_path: Path):
    w = workload(name)
    sandbox = Sandbox.of(w, tmp_path)
    others = {path for other in WORKLOADS for path in other.writable} - set(w.writable)  # another pod's volumes
    done = sandbox.run(["python", "-c", PROBE, *w.writable, *UNDECLARED, *sorted(others)])
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["uid"], result["gid"], result["groups"], result["cwd"]) == (IMAGE_UID, IMAGE_UID, [], APP_DIR)
    assert {path: result["writes"][path] for path in w.writable} == dict.fromkeys(w.writable, "ok")
    refused = {path: result["writes"][path] for path in (*UNDECLARED, *others)}
    assert set(refused.values()) <= {"EROFS", "EACCES", "ENOENT"}, refused
    assert refused[APP_DIR] == "EROFS"  # refused by the mount itself, not only by ownership
    # What the workload wrote went to its volume (the host folder behind it), as the image's user.
    for inside, host in sandbox.writable.items():
        # Only the probe's own file counts: a checkout under /tmp (a clean clone there) has its venv's mount point
        # made inside the /tmp volume too.
        [written] = [path for path in host.iterdir() if path.name.startswith("probe-")]
        assert written.read_text() == "written from the sandbox", inside
        assert written.stat().st_uid == IMAGE_UID


def _serving_at(command: tuple[str, ...], port: int) -> list[str]:
    """The web's command with the test's own address: a free port on loopback, not the image's fixed one (other
    tests run beside this one on the same host network)."""
    argv = list(command)
    argv[argv.index("--port") + 1] = str(port)
    argv[argv.index("--host") + 1] = "127.0.0.1"
    return argv


def _migrate(db_folder: Path, secret_key: str) -> Path:
    """The schema, as the release Job does before the web starts (here on the host, as root), then handed to the
    image's user: the database is a SQLite file in a folder the web and the ingest both mount under /tmp."""
    database = db_folder / "control-plane.sqlite3"
    env = {
        **os.environ,
        "SECRET_KEY": secret_key,
        "CIO_STATE_DIR": str(db_folder.parent / "migrate-state"),
        "DATABASE_URL": f"sqlite:///{database}",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True, timeout=120
    )
    os.chown(database, IMAGE_UID, IMAGE_UID)
    return database


def _stored_decision(database: Path, decision_id: str) -> str | None:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        row = db.execute("SELECT decision FROM audit_logs WHERE decision_id = ?", (decision_id,)).fetchone()
    return row[0] if row else None


async def _until(what: str, check: Callable[[], object], processes: dict[str, subprocess.Popen[bytes]], logs: Path):
    """Poll `check` (sync or async) until it holds; a workload that exits meanwhile fails the test with its log."""
    async with asyncio.timeout(30):
        while True:
            for name, proc in processes.items():
                if proc.poll() is not None:
                    log = (logs / f"{name}.log").read_text(errors="replace")[-4000:]
                    raise AssertionError(f"{name} exited ({proc.returncode}) before {what}:\n{log}")
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(0.1)  # a poll interval while a process starts; the timeout only bounds a failure


def _exit_status(proc: subprocess.Popen[bytes]) -> int | str:
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        return "did not stop on SIGTERM within 30 s"


def _owned_by_the_image_user(tree: Path) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(tree):
        dirs[:] = [d for d in dirs if d not in (".git", ".venv")]
        found += [Path(folder, n) for n in (*dirs, *files) if Path(folder, n).lstat().st_uid == IMAGE_UID]
    return found


async def test_gate_ingest_and_web_serve_from_the_read_only_image_layout(nats_url, redis_url, nc, redis, tmp_path):
    secret_key = secrets.token_urlsafe(50)
    database = _migrate(own_folder(tmp_path / "db"), secret_key)
    keys = tmp_path / "secrets"  # the gate's audit signing key, mounted read-only as a Secret would be
    keys.mkdir()
    os.chown(write_audit_signing_key(keys), IMAGE_UID, IMAGE_UID)
    control_plane = {
        "SECRET_KEY": secret_key,
        "DATABASE_URL": f"sqlite:////tmp/db/{database.name}",
        "NATS_URL": nats_url,
        "REDIS_URL": redis_url,
        "CIO_ALLOWED_HOSTS": "127.0.0.1",
        "CIO_AUDIT_PUBLIC_KEY": TEST_AUDIT_PUBLIC_KEY,  # the web counts a gate live only by its sealed heartbeat
    }
    gate, web, ingest = workload("gate"), workload("web"), workload("ingest")
    gate_env = {
        **gate.env,
        "CIO_GATE_HEALTH_PORT": str(free_port()),
        "CIO_GATE_HEALTH_HOST": "127.0.0.1",
        "NATS_URL": nats_url,
        "REDIS_URL": redis_url,
        "CIO_GATE_ID": GATE_ID,
        "CIO_POLICY_PUBLIC_KEY": TEST_PUBLIC_KEY,
        "CIO_POLICY_FLOOR_WAIT_S": "0",  # a brand-new spool: no floor-learning wait
        "CIO_AUDIT_SIGNING_KEY_FILE": "/run/secrets/cio/audit-signing.key",
        "CIO_HEARTBEAT_INTERVAL_S": "0.2",
    }
    web_port = free_port()
    await activate(redis, nc, make_spec(), 1)

    beat = asyncio.Event()

    async def on_beat(msg) -> None:
        if orjson.loads(msg.data)["gate_id"] == GATE_ID:
            beat.set()

    heartbeats = await nc.subscribe("cio.gate.heartbeat", cb=on_beat)
    gate_box = Sandbox.of(gate, tmp_path / "gate", readonly={"/run/secrets/cio": keys})
    database_folder = {"/tmp/db": database.parent}
    boxes: dict[str, tuple[Sandbox, list[str], dict[str, str]]] = {
        "gate": (gate_box, list(gate.command), gate_env),
        "web": (
            Sandbox.of(web, tmp_path / "web", also_writable=database_folder),
            _serving_at(web.command, web_port),
            control_plane,
        ),
        "ingest": (
            Sandbox.of(ingest, tmp_path / "ingest", also_writable=database_folder),
            list(ingest.command),
            control_plane,
        ),
    }
    processes = {name: box.start(argv, env, tmp_path / f"{name}.log") for name, (box, argv, env) in boxes.items()}
    try:
        await _until("its first heartbeat", beat.is_set, processes, tmp_path)
        envelope, _ = await request(nc, live_intent_body(signal_id="image-1"))
        assert envelope.data.decision == "APPROVED"
        decision_id = envelope.data.decision_id

        stored = await _until(
            "the decision was stored", lambda: _stored_decision(database, decision_id), processes, tmp_path
        )
        assert stored == "APPROVED"

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}", timeout=5) as client:

            async def health() -> httpx.Response | None:
                try:
                    return await client.get("/api/health")
                except httpx.TransportError:
                    return None  # not listening yet

            response = await _until("/api/health answered", health, processes, tmp_path)
        assert response.status_code == 200, response.text
        checks = response.json()["data"]["checks"]
        assert (checks["database"], checks["gates"]) == ("ok", 1)  # the sandboxed gate, seen through Redis
    finally:
        await heartbeats.unsubscribe()
        for proc in processes.values():
            if proc.poll() is None:
                proc.terminate()
        codes = {name: await asyncio.to_thread(_exit_status, proc) for name, proc in processes.items()}
    # Each stopped cleanly on SIGTERM, as on a pod's deletion; uvicorn, once shut down, re-raises the signal.
    assert codes == {"gate": 0, "web": -signal.SIGTERM, "ingest": 0}, codes
    assert "Finished server process" in (tmp_path / "web.log").read_text()
    # The gate kept its spool on its volume, as the image's user; the source tree got nothing (no __pycache__).
    spool = gate_box.writable[gate.env["CIO_AUDIT_SPOOL_DIR"]]
    assert [p.stat().st_uid for p in spool.rglob("*")] and {p.stat().st_uid for p in spool.rglob("*")} == {IMAGE_UID}
    assert _owned_by_the_image_user(ROOT) == []
