"""The control plane's web server as `make up` runs it (uvicorn, no lifespan, no proxy headers of its own), in a
process of its own on the test's database."""

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.servers import free_port, wait_for_port
from tests.audit.ingest_helpers import ROOT


def web_argv(port: int) -> list[str]:
    app = "cio_site.asgi:application"
    return [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--lifespan", "off", "--no-proxy-headers"]


@contextmanager
def running_web(env: dict[str, str], log: Path, port: int | None = None) -> Iterator[str]:
    """`env` must name the test's DATABASE_URL; yields the server's base URL."""
    port = port or free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(web_argv(port), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, 30, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
