"""`make up`'s supervisor: the demo's intents are approved and rejected with reasons; Ctrl-C stops every child."""

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_stack_runs_the_demo_and_stops_cleanly_on_ctrl_c(tmp_path):
    ports = {"--nats-port": free_port(), "--redis-port": free_port(), "--nats-monitor-port": free_port()}
    argv = [sys.executable, "-m", "deploy.devstack", "--state-dir", str(tmp_path / "state"), "--demo-rate", "10"]
    for flag, port in ports.items():
        argv += [flag, str(port)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        approved = any("[ demo] APPROVED" in entry for entry in lines)
        rejected = any("[ demo] REJECTED" in entry and "_" in entry.split("REJECTED")[1] for entry in lines)
        if approved and rejected and any("VAL_ERR" in entry for entry in lines):
            break
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    output = "".join(lines) + rest
    assert proc.returncode == 0, output
    assert "Petrosa CIO local stack is up" in output
    assert "seeded policy v1" in output
    assert "[ demo] APPROVED" in output and "-> signals.trading." in output
    assert "SYMBOL_DENIED" in output or "CONFIDENCE_TOO_LOW" in output
    for name in ("demo", "gate", "redis", "nats"):
        assert f"[stack] {name} stopped (exit 0)" in output, output
    assert "audit outbox flushed" in output
    assert not any(_port_open(port) for port in ports.values())
