"""Celery as production runs it: `celery -A cio_site worker` and `beat` in their own processes, on the test's
Redis (broker) and database, logging to files the tests read."""

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from deploy.devstack import WORKER_ARGS
from tests.audit.ingest_helpers import ROOT, database_url, wait_for


class CeleryProcess:
    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "cio_site", *argv],
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, marker: str, timeout_s: float = 60) -> None:
        """Poll the process's own log for its start-up line (a separate process; the timeout bounds a failure)."""

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"celery exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            return marker in self.log()

        wait_for(ready, timeout_s, f"celery to log {marker!r}")

    def kill(self) -> None:
        """SIGKILL the whole process group: no clean-up, no lock released, no message acknowledged."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def celery_env(stack: Any, redis_url: str, state_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url(),
        "CIO_STATE_DIR": str(state_dir),
        "SECRET_KEY": stack.SECRET_KEY,  # one deployment, one key: the Strategist's seals verify across processes
        "NATS_URL": stack.NATS_URL,
        "REDIS_URL": stack.REDIS_URL,
        "CIO_CELERY_BROKER_URL": redis_url,
        "CIO_STRATEGIST_REDIS_URL": redis_url,
        "CIO_POLICY_SIGNING_KEY_FILE": str(stack.CIO_POLICY_SIGNING_KEY_FILE),
        "CIO_AUDIT_STORE": "django",
        "CIO_LOG_LEVEL": "INFO",
        "CIO_LLM_BASE_URL": "",
    }
    env.update(extra)
    return env


def start_worker(env: dict[str, str], log_path: Path) -> CeleryProcess:
    worker = CeleryProcess(WORKER_ARGS, env, log_path)
    worker.wait_ready("ready.")
    return worker


def start_beat(env: dict[str, str], log_path: Path, state_dir: Path) -> CeleryProcess:
    beat = CeleryProcess(
        ["beat", "-l", "INFO", "--pidfile=", "-s", str(state_dir / "celerybeat-schedule"), "--max-interval", "1"],
        env,
        log_path,
    )
    beat.wait_ready("beat: Starting")
    return beat
