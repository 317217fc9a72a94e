"""Components take their NATS user and password apart from `NATS_URL` (cio_kernel/nats_credentials.py): on the
secured stack, a gate process and the canary connect under their own identity with a URL that holds no secret,
and neither the URL nor the log carries the password."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from canary.connection import canary_credentials, connect_once
from cio_kernel.nats_credentials import NatsCredentialsError, nats_credentials
from deploy import access
from tests.e2e.gate_process import ROOT, GateProcess


def _password_file(folder: Path, password: str) -> Path:
    path = folder / "nats-password"
    path.write_text(password + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def test_the_canary_prefers_its_own_identity_to_the_shared_one(tmp_path):
    """A shell that sourced `make up`'s env.sh holds the `audit` identity in the shared variables and the
    canary's in CIO_CANARY_NATS_*: `python -m canary` takes its own (canary/connection.py)."""
    shared = {"CIO_NATS_USER": "audit", "CIO_NATS_PASSWORD": "audit-password"}
    assert canary_credentials(shared) == {"user": "audit", "password": "audit-password"}
    path = _password_file(tmp_path, "canary-password")
    own = {**shared, "CIO_CANARY_NATS_USER": "canary", "CIO_CANARY_NATS_PASSWORD_FILE": str(path)}
    assert canary_credentials(own) == {"user": "canary", "password": "canary-password"}
    with pytest.raises(NatsCredentialsError, match="CIO_NATS_PASSWORD_FILE or CIO_NATS_PASSWORD"):
        canary_credentials({**shared, "CIO_CANARY_NATS_USER": "canary"})  # never the shared password


def test_user_and_password_come_from_the_environment_or_a_file(tmp_path):
    assert nats_credentials({}) == {}
    assert nats_credentials({"CIO_NATS_USER": "gate", "CIO_NATS_PASSWORD": "s3cret"}) == {
        "user": "gate",
        "password": "s3cret",
    }
    path = _password_file(tmp_path, "from-a-file")
    assert nats_credentials({"CIO_NATS_USER": "gate", "CIO_NATS_PASSWORD_FILE": str(path)})["password"] == (
        "from-a-file"
    )


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({"CIO_NATS_USER": "gate"}, "CIO_NATS_PASSWORD_FILE or CIO_NATS_PASSWORD"),
        ({"CIO_NATS_PASSWORD": "x"}, "CIO_NATS_USER"),
        ({"CIO_NATS_USER": "g", "CIO_NATS_PASSWORD": "x", "CIO_NATS_PASSWORD_FILE": "/f"}, "not both"),
        ({"CIO_NATS_USER": "g", "CIO_NATS_PASSWORD_FILE": "/nonexistent/nats-password"}, "cannot read"),
    ],
)
def test_contradictory_or_unreadable_settings_are_refused_with_what_to_fix(environ, says):
    with pytest.raises(NatsCredentialsError, match=says):
        nats_credentials(environ)


def test_an_empty_password_file_is_refused(tmp_path):
    path = _password_file(tmp_path, "")
    with pytest.raises(NatsCredentialsError, match="is empty"):
        nats_credentials({"CIO_NATS_USER": "gate", "CIO_NATS_PASSWORD_FILE": str(path)})


async def test_a_gate_process_runs_under_its_identity_with_no_secret_in_its_url(secured, tmp_path):
    observer = await secured.connect("canary")
    password = secured.passwords["nats:gate"]
    bare_url = f"nats://127.0.0.1:{secured.nats.port}"
    gate = GateProcess(
        "creds-gate",
        bare_url,
        secured.redis_url("gate"),
        tmp_path / "spool",
        tmp_path / "creds-gate.log",
        CIO_NATS_INBOX_PREFIX=access.NATS_ROLES["gate"].inbox_prefix,
        CIO_NATS_USER="gate",
        CIO_NATS_PASSWORD_FILE=str(_password_file(tmp_path, password)),
    )
    try:
        await gate.start(observer)  # its heartbeat arrives: it connected, and `gate` may publish heartbeats
        reply = await observer.request("cio.gate.ping", b"", timeout=5)  # answered: it holds the gate's rights
        assert b"creds-gate" in reply.data
    finally:
        assert await gate.terminate() == 0
    assert password not in gate.log() and "creds-gate" in gate.log()
    await observer.close()


def test_a_wrong_password_is_refused_without_printing_it(secured):
    env = {
        **os.environ,
        "NATS_URL": f"nats://127.0.0.1:{secured.nats.port}",
        "CIO_NATS_USER": "gate",
        "CIO_NATS_PASSWORD": "not-the-password",
    }
    probe = "import asyncio, canary.connection as c\nasync def e(x): pass\nasync def m():\n"
    probe += "    await c.connect_once(__import__('os').environ['NATS_URL'], '_INBOX.gate', 2, 'probe', e)\n"
    probe += "asyncio.run(m())"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert done.returncode != 0
    assert b"not-the-password" not in done.stdout + done.stderr


async def test_the_canary_connects_with_its_own_identity_from_the_environment(secured, monkeypatch):
    monkeypatch.setenv("CIO_NATS_USER", "canary")
    monkeypatch.setenv("CIO_NATS_PASSWORD", secured.passwords["nats:canary"])
    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    nc = await connect_once(
        f"nats://127.0.0.1:{secured.nats.port}", access.NATS_ROLES["canary"].inbox_prefix, 2, "canary", on_error
    )
    try:
        await nc.publish("signals.trading.x", b"{}")  # not the canary's to publish
        await nc.flush()
        await nc.flush()
        assert any("permissions violation" in str(e).lower() for e in errors), errors
    finally:
        await nc.close()
