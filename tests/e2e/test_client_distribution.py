"""The fleet's client as the fleet installs it: the `petrosa-cio-client` wheel is built from this repository,
installed into a clean virtual environment (no system site-packages, not this project), and a bot running in that
environment talks to a real gate process through it (docs/client.md)."""

import asyncio
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.factories import live_intent_body, make_spec
from tests.integration.helpers import activate

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ABSENT = ("django", "celery", "redis", "cryptography", "gate", "cio_site", "canary")

# What a strategy of the fleet would write; it runs in the clean environment, so it can import only the wheel.
BOT = """
import asyncio, json, sys

import nats
from cio_client import ConservativeModeError, GateClient, GateUnavailableError


async def main(url: str, mode: str, intent: dict) -> None:
    nc = await nats.connect(url)
    conservative = asyncio.Event()
    wait_s = 0.3 if mode == "no-gate" else 10.0
    client = await GateClient(nc, retries=1, default_timeout_s=wait_s, on_conservative=conservative.set).start()
    out = {}
    if mode == "no-gate":
        await asyncio.wait_for(conservative.wait(), 10)
        try:
            await client.submit(intent)
        except ConservativeModeError:
            out["buy"] = "refused"
        try:
            await client.submit({**intent, "action": "close", "stop_loss": None})
        except GateUnavailableError:
            out["close"] = "unavailable"
    else:
        envelope = await client.submit(intent)
        out = {"decision": envelope.data.decision, "conservative": client.conservative}
    await client.stop()
    await nc.close()
    print(json.dumps(out))


asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))
"""


def _run(args: list[str], cwd: Path) -> str:
    # No PYTHONPATH: nothing of this checkout may leak into the clean environment.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def clean_python(tmp_path: Path) -> tuple[Path, list[str]]:
    """A new virtual environment holding the client wheel and its dependencies only; the wheel's modules."""
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            "dist",
            str(ROOT / "clients" / "python"),
        ],
        tmp_path,
    )
    (wheel,) = (tmp_path / "dist").glob("petrosa_cio_client-*-py3-none-any.whl")
    _run([sys.executable, "-m", "venv", "--without-pip", "venv"], tmp_path)
    python = tmp_path / "venv" / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", str(wheel)], tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        modules = [
            name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
            for name in archive.namelist()
            if name.endswith(".py")
        ]
    return python, modules


async def test_a_bot_on_the_installed_client_alone_is_decided_by_a_real_gate(
    clean_python, spawn_gate, redis, nc, tmp_path
):
    python, modules = clean_python
    probe = (
        "import importlib, importlib.util, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(json.dumps([m for m in {list(ABSENT)!r} if importlib.util.find_spec(m) is not None]))\n"
    )
    assert json.loads(_run([str(python), "-I", "-c", probe], tmp_path)) == []  # every module imports; no Django
    (tmp_path / "bot.py").write_text(BOT)

    async def bot(mode: str, intent: dict) -> dict:
        args = [str(python), "-I", "bot.py", nc.connected_url.geturl(), mode, json.dumps(intent)]
        return json.loads(await asyncio.to_thread(_run, args, tmp_path))

    # No gate yet: the client goes conservative, refuses to open, and a close finds nobody to answer.
    assert await bot("no-gate", live_intent_body(signal_id="dist-0")) == {"buy": "refused", "close": "unavailable"}

    await activate(redis, nc, make_spec(), 1)
    await spawn_gate("dist-gate")
    assert await bot("gate", live_intent_body(signal_id="dist-1")) == {"decision": "APPROVED", "conservative": False}
