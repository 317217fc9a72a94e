"""`python -m canary` as cron runs it, against a real gate process: OK while the gate beats; when the gate stops,
exit 1 and an email through the local SMTP server, once; recovery mail when it is back. The break glass
(`python -m canary halt`) has its own tests, on the shipped access table: test_break_glass.py."""

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from cio_kernel.log_format import message_of
from deploy.mail_catcher import MailCatcher
from tests.factories import make_spec
from tests.integration.helpers import activate

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def smtp():
    catcher = MailCatcher().start()
    yield catcher
    catcher.stop()


async def canary(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "canary", *args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_the_canary_alarms_once_when_the_gate_stops_and_says_when_it_is_back(
    spawn_gate, redis, nc, nats_url, smtp, tmp_path
):
    await activate(redis, nc, make_spec(), 1)
    gate = await spawn_gate("canary-gate")
    common = [
        "--nats-url",
        nats_url,
        "--smtp-host",
        "127.0.0.1",
        "--smtp-port",
        str(smtp.port),
        "--mail-to",
        "ops@example.test",
        "--state-file",
        str(tmp_path / "canary.json"),
        "--timeout",
        "1",
    ]
    code, out = await canary(*common, "--expect-state", "active", "--min-policy-version", "1")
    assert code == 0 and message_of(out).startswith("CANARY OK gate=canary-gate v1 active"), out  # after its stamp

    await gate.terminate()
    code, out = await canary(*common)
    assert code == 1 and "gate_unreachable" in out and "alarmed: email" in out, out
    code, _ = await canary(*common)
    assert code == 1  # still down, held back: one alarm per outage window
    assert [s.split(":")[0] for s in smtp.subjects()] == ["CANARY ALARM"]

    await spawn_gate("canary-gate-2")
    code, out = await canary(*common)
    assert code == 0 and "canary-gate-2" in out
    assert [s.split(":")[0] for s in smtp.subjects()] == ["CANARY ALARM", "CANARY RECOVERED"]


async def test_without_any_alarm_channel_an_outage_exits_3(nats_url, tmp_path):
    code, out = await canary("--nats-url", nats_url, "--timeout", "0.5", "--state-file", str(tmp_path / "s.json"))
    assert code == 3 and "no responders" in out
