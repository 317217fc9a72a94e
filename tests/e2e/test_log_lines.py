"""Every line a process writes carries a timestamp, and with `CIO_LOG_FORMAT=json` every line is one JSON object
(docs/logging.md): the canary, the demo bot, the mail catcher, a management command and a gate that cannot start
(its traceback), run for real, their stdout and stderr read apart."""

import asyncio
import os
import re
import smtplib
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")
FIELDS = {"ts", "level", "logger", "component", "message"}


class Child:
    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.proc: asyncio.subprocess.Process | None = None
        self.stdout: list[str] = []

    async def start(self) -> "Child":
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, *self.argv, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        return self

    async def wait_for(self, marker: str) -> str:
        """Read stdout until a line holds `marker` (a separate process: the caller's timeout bounds a failure)."""
        assert self.proc is not None and self.proc.stdout is not None
        while line := (await self.proc.stdout.readline()).decode():
            self.stdout.append(line)
            if marker in line:
                return line
        raise AssertionError(f"{self.name} ended before {marker!r}: {self.stdout}")

    async def finish(self, stop: bool = False) -> tuple[list[str], list[str]]:
        assert self.proc is not None
        if stop:
            self.proc.terminate()
        out, err = await self.proc.communicate()
        return self.stdout + out.decode().splitlines(keepends=True), err.decode().splitlines(keepends=True)


def _message(line: str, log_format: str) -> str:
    return orjson.loads(line)["message"] if log_format == "json" else STAMP.sub("", line)


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_every_line_of_every_process_is_stamped(log_format, nats_url, tmp_path):
    env = {**os.environ, "CIO_LOG_FORMAT": log_format, "PYTHONUNBUFFERED": "1", "CIO_STATE_DIR": str(tmp_path)}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    children = {
        "canary": Child(
            "canary",
            [
                "-m",
                "canary",
                "--nats-url",
                "nats://127.0.0.1:9",
                "--timeout",
                "0.5",
                "--state-file",
                str(tmp_path / "canary.json"),
            ],
            env,
        ),
        "mail": Child("mail", ["-m", "deploy.mail_catcher", "--port", "0"], env),
        "bot": Child("bot", ["-m", "deploy.demo_bot", "--nats-url", nats_url, "--every", "30"], env),
        "command": Child("command", ["manage.py", "check"], env),
        # A setting the gate cannot read: it stops on an uncaught exception, logged as one record.
        "gate": Child("gate", ["-m", "gate"], {**env, "CIO_HEARTBEAT_INTERVAL_S": "often"}),
    }
    for child in children.values():
        await child.start()

    async def drive() -> dict[str, tuple[list[str], list[str]]]:
        ready = await children["mail"].wait_for("mail catcher: SMTP on")
        port = int(re.search(r"127\.0\.0\.1:(\d+)", _message(ready, log_format)).group(1))
        await asyncio.to_thread(_send_mail, port)
        await children["mail"].wait_for("mail to ops@example.test")
        await children["bot"].wait_for("bot: gate unavailable")  # no gate on this NATS
        stops = {"mail": True, "bot": True}
        return {name: await child.finish(stop=stops.get(name, False)) for name, child in children.items()}

    try:
        output = await asyncio.wait_for(drive(), 60)
    finally:
        for child in children.values():
            if child.proc is not None and child.proc.returncode is None:
                child.proc.kill()
    assert children["canary"].proc.returncode == 3 and children["gate"].proc.returncode == 1

    for name, (stdout, stderr) in output.items():
        assert stdout or stderr, f"{name} wrote nothing"
        for line in stdout + stderr:
            assert line.endswith("\n"), f"{name}: a cut line {line!r}"
            if log_format == "text":
                assert STAMP.match(line), f"{name}: {line!r} has no timestamp"
            else:
                parsed = orjson.loads(line)
                assert parsed.keys() >= FIELDS and STAMP.match(parsed["ts"] + " "), f"{name}: {line!r}"
    said = {name: [_message(line, log_format) for line in out + err] for name, (out, err) in output.items()}
    assert any(line.startswith("CANARY FAIL gate_unreachable") for line in said["canary"])
    assert any("System check identified no issues" in line for line in said["command"])
    [traceback] = [line for line in output["gate"][1] if "ValidationError" in line]  # one record, not 20 lines
    if log_format == "json":
        record = orjson.loads(traceback)
        assert record["level"] == "CRITICAL" and record["component"] == "gate" and "often" in record["exc"]


def _send_mail(port: int) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "canary@example.test", "ops@example.test", "CANARY ALARM"
    message.set_content("the gate stopped answering")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(message)
