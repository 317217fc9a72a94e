"""The local-server launcher the tests and `make up` share: the ports it hands out and what it says when a server
fails to start."""

import sys
from pathlib import Path

import pytest

from deploy.servers import ServerExited, ServerProcess, free_port


def test_ports_come_from_below_the_ephemeral_range_and_never_twice():
    low, _ = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    # An outgoing connection's local end comes from the ephemeral range; a port chosen there can be taken
    # between being chosen and being listened on.
    assert max(ports) < low


def test_a_server_that_exits_before_listening_is_reported_with_its_log(tmp_path: Path):
    log = tmp_path / "server.log"
    argv = [sys.executable, "-c", "import sys; print('listen tcp: address already in use'); sys.exit(1)"]
    server = ServerProcess("nats", argv, free_port(), log)
    with pytest.raises(ServerExited, match=r"(?s)nats: process exited with code 1.*address already in use"):
        server.start(timeout_s=10)
