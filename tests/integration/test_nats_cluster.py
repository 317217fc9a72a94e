"""The production NATS cluster's rendered configuration (deploy/nats/cluster), run for real: three nats-server
processes from the wheel on local ports, `CIO_AUDIT` with three replicas, and today's unauthenticated fleet
landing on the restricted `no_auth_user`."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.js.api import StreamConfig

from cio_kernel.audit_stream import AUDIT_STREAM, audit_stream_config
from cio_kernel.nats_flush import flush_ordered
from deploy import access, nats_cluster
from deploy.servers import ServerProcess, free_port, nats_server_binary
from tests.integration.helpers import collect, wait_until


def test_the_files_in_deploy_nats_cluster_are_rendered_from_the_table():
    for path, text in nats_cluster.rendered().items():
        assert path.read_text() == text, f"{path} is stale: run `python -m deploy.nats_cluster`"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[list[ServerProcess], dict[str, str]]]:
    passwords = access.load_or_create_credentials(tmp_path)
    passwords["nats:sys"] = "sys-password-for-the-test"
    nodes = [
        nats_cluster.Node(f"cio-{i}", "127.0.0.1", free_port(), free_port(), free_port())
        for i in range(nats_cluster.NODES)
    ]
    routes = [f"nats-route://127.0.0.1:{node.cluster_port}" for node in nodes]
    servers = []
    for node in nodes:
        folder = tmp_path / node.name
        folder.mkdir()
        # The shipped files, with this machine's ports and folders in place of the pods'.
        (folder / "nats-server.conf").write_text(
            nats_cluster.render_node(node, routes, str(folder / "js"), max_file_store="1G")
        )
        (folder / "accounts.conf").write_text(nats_cluster.render_accounts())
        (folder / "credentials.conf").write_text(nats_cluster.render_credentials(passwords, cost=4))
        argv = [nats_server_binary(), "-c", str(folder / "nats-server.conf")]
        servers.append(ServerProcess(node.name, argv, node.client_port, tmp_path / f"{node.name}.log"))
    try:
        for server in servers:
            server.start(timeout_s=30)
        yield servers, passwords
    finally:
        for server in servers:
            server.stop()


async def test_a_three_node_cluster_replicates_the_audit_stream_and_restricts_the_anonymous_fleet(cluster):
    servers, passwords = cluster
    urls = [f"nats://127.0.0.1:{server.port}" for server in servers]
    release = await nats.connect(
        urls, user="release", password=passwords["nats:release"], inbox_prefix="_INBOX.release"
    )
    gate = await nats.connect(urls[1:], user="gate", password=passwords["nats:gate"], inbox_prefix="_INBOX.gate")
    engine = await nats.connect(
        urls[2:], user="tradeengine", password=passwords["nats:tradeengine"], inbox_prefix="_INBOX.tradeengine"
    )
    refusals: list[str] = []

    async def on_error(exc: Exception) -> None:
        refusals.append(str(exc))

    fleet = await nats.connect(urls[:1], error_cb=on_error)  # no credentials, as today's fleet connects
    try:
        js = release.jetstream()
        config = audit_stream_config(max_bytes=64 * 1024**2, replicas=3)
        created: list[StreamConfig] = []

        async def create() -> bool:
            # The cluster elects its JetStream meta leader a moment after the routes are up.
            try:
                created.append((await js.add_stream(config)).config)
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError):
                await asyncio.sleep(0.2)
                return False
            return True

        await wait_until(create, timeout_s=30, what="CIO_AUDIT created on the cluster")
        assert created[0].num_replicas == 3
        info = await js.stream_info(AUDIT_STREAM)
        assert info.cluster is not None
        assert len(info.cluster.replicas or []) == 2  # a leader and two followers: one copy per node

        intents = await collect(gate, "cio.intent.trading.>")
        signals = await collect(engine, "signals.trading.>")
        await fleet.publish("cio.intent.trading.momentum_scalper", b'{"strategy_id": "momentum_scalper"}')
        await fleet.publish("signals.trading.momentum_scalper", b'{"forged": true}')
        await flush_ordered(fleet)
        await wait_until(lambda: intents.messages, timeout_s=10, what="the anonymous intent at a gate")
        await wait_until(lambda: refusals, timeout_s=10, what="the forged signal refused")
        assert "permissions violation" in refusals[0].lower()
        assert "signals.trading.momentum_scalper" in refusals[0]
        # The gate's subscription saw the intent on another node; no forged signal reached the engine.
        await flush_ordered(engine)
        assert signals.messages == []
    finally:
        for client in (release, gate, engine, fleet):
            await client.close()
