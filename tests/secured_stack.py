"""NATS and Valkey started with the shipped permissions (deploy/access.py rendered with generated passwords), a
client per identity, and gate processes under the `gate` identity: the stack an attacker holding exactly one
component's credentials faces."""

from pathlib import Path

import nats
from nats.aio.client import Client as NATS

from deploy import access
from deploy.servers import ServerProcess, free_port, nats_server, redis_server
from tests.e2e.gate_process import GateProcess


class Secured:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.passwords = access.load_or_create_credentials(tmp)
        config, acl = access.write_local_servers(tmp, self.passwords, bcrypt_cost=4)
        self.nats: ServerProcess = nats_server(free_port(), tmp / "js", tmp / "nats.log", config=config).start()
        self.redis: ServerProcess = redis_server(free_port(), tmp / "redis", tmp / "redis.log", acl_file=acl).start()
        self.errors: dict[str, list[Exception]] = {}
        self.clients: list[NATS] = []
        self.gates: list[GateProcess] = []

    def nats_url(self, role: str) -> str:
        return access.nats_url(role, self.nats.port, self.passwords)

    def redis_url(self, role: str) -> str:
        return access.redis_url(role, self.redis.port, self.passwords)

    async def connect(self, role: str, label: str | None = None) -> NATS:
        """A client with `role`'s credentials and own inbox; what NATS refuses it is kept under `label` (or role)."""
        errors = self.errors.setdefault(label or role, [])

        async def on_error(exc: Exception) -> None:
            errors.append(exc)

        client = await nats.connect(
            self.nats_url(role), inbox_prefix=access.NATS_ROLES[role].inbox_prefix, error_cb=on_error
        )
        self.clients.append(client)
        return client

    def violations(self, role: str) -> list[str]:
        return [str(e) for e in self.errors.get(role, []) if "permissions violation" in str(e).lower()]

    async def spawn_gate(self, gate_id: str, observer: NATS, **env: str) -> GateProcess:
        """A gate process under the `gate` identity; its copy of the policy stays usable while Valkey is stopped."""
        gate = GateProcess(
            gate_id,
            self.nats_url("gate"),
            self.redis_url("gate"),
            self.tmp / "spool",
            self.tmp / f"{gate_id}.log",
            CIO_NATS_INBOX_PREFIX=access.NATS_ROLES["gate"].inbox_prefix,
            CIO_POLICY_MAX_AGE_S="600",
            **env,
        )
        self.gates.append(gate)
        return await gate.start(observer)

    async def close_clients(self) -> None:
        for client in self.clients:
            if not client.is_closed:
                await client.close()
        self.clients.clear()

    def stop(self) -> None:
        for gate in self.gates:
            gate.kill()
        self.redis.stop()
        self.nats.stop()
