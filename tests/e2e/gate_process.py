"""Run `python -m gate` as a real child process, the way it is deployed."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
from nats.aio.client import Client as NATS

from tests.factories import TEST_PUBLIC_KEY

ROOT = Path(__file__).resolve().parents[2]


class GateProcess:
    def __init__(self, gate_id: str, nats_url: str, redis_url: str, spool_dir: Path, log_path: Path, **env: str):
        self.gate_id = gate_id
        self.log_path = log_path
        self._env = {
            **os.environ,
            "NATS_URL": nats_url,
            "REDIS_URL": redis_url,
            "CIO_GATE_ID": gate_id,
            "CIO_AUDIT_SPOOL_DIR": str(spool_dir),
            "CIO_HEARTBEAT_INTERVAL_S": "0.2",
            "CIO_POLICY_REFRESH_S": "0.5",
            "CIO_AUDIT_ACK_TIMEOUT_S": "0.5",
            "CIO_POLICY_PUBLIC_KEY": TEST_PUBLIC_KEY,
            "CIO_POLICY_FLOOR_WAIT_S": "0",  # every test's spool is new: no floor-learning wait unless asked for
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, nc: NATS, timeout_s: float = 20.0) -> "GateProcess":
        """Start the process and wait for its first heartbeat."""
        seen = asyncio.Event()

        async def on_beat(msg) -> None:
            if orjson.loads(msg.data)["gate_id"] == self.gate_id:
                seen.set()

        sub = await nc.subscribe("cio.gate.heartbeat", cb=on_beat)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: ASYNC220 - a fork; nothing here waits on it
                [sys.executable, "-m", "gate"], cwd=ROOT, env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            await asyncio.wait_for(seen.wait(), timeout_s)
        finally:
            await sub.unsubscribe()
        return self

    async def terminate(self, timeout_s: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.proc.wait, timeout_s)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
