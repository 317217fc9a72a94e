"""Valkey with Sentinel from the wheel (docs/redis-ha.md): a primary, one replica and three Sentinels, every server
with the shipped ACL users (deploy/access.py; the replica copies as `replica`, the Sentinels watch as `sentinel`),
the Sentinels behind a password of their own. Failure detection is short (`down-after-milliseconds`) so a
killed primary is replaced within seconds."""

import secrets
import time
from pathlib import Path

import redis

from cio_kernel.redis_clients import SentinelConfig
from deploy import access
from deploy.servers import ServerProcess, free_port, redis_sentinel, redis_server

MASTER = "cio"
DOWN_AFTER_MS = 400


def _wait(condition: object, timeout_s: float, what: str) -> None:
    """Poll a condition on the servers until it holds; the timeout only bounds a failing test."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if condition():  # type: ignore[operator]
                return
        except (redis.RedisError, OSError):
            pass  # a server going away or not ready yet: ask again
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


class SentinelStack:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.passwords = access.load_or_create_credentials(tmp)
        _, acl = access.write_local_servers(tmp, self.passwords, bcrypt_cost=4)
        # The test's own administrator (not a shipped identity): it cuts the replica's link on purpose.
        self.admin_password = secrets.token_urlsafe(16)
        acl.write_text(acl.read_text() + f"user admin on >{self.admin_password} ~* &* +@all\n")
        self.sentinel_password = secrets.token_urlsafe(16)
        replica_login = ("--masteruser", "replica", "--masterauth", self.passwords["redis:replica"])
        self.primary = redis_server(
            free_port(), tmp / "primary", tmp / "primary.log", acl_file=acl, extra=replica_login
        )
        self.primary.start()
        self.replica = redis_server(
            free_port(),
            tmp / "replica",
            tmp / "replica.log",
            acl_file=acl,
            extra=("--replicaof", "127.0.0.1", str(self.primary.port), *replica_login),
        ).start()
        self.sentinels: list[ServerProcess] = []
        for index in range(3):
            config = [
                f"sentinel monitor {MASTER} 127.0.0.1 {self.primary.port} 2",
                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}",
                f"sentinel failover-timeout {MASTER} 2000",  # a split vote is retried after twice this
                f"sentinel auth-user {MASTER} sentinel",
                f"sentinel auth-pass {MASTER} {self.passwords['redis:sentinel']}",
                f"requirepass {self.sentinel_password}",
                f"sentinel sentinel-pass {self.sentinel_password}",
            ]
            port = free_port()
            self.sentinels.append(
                redis_sentinel(port, tmp / f"sentinel-{index}", config, tmp / f"sentinel-{index}.log")
            )
        for sentinel in self.sentinels:
            sentinel.start()

    @property
    def config(self) -> SentinelConfig:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return SentinelConfig.parse(hosts, MASTER, password=self.sentinel_password)  # type: ignore[return-value]

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to reach Redis through these Sentinels (its own URL stays as it is)."""
        return {
            "CIO_REDIS_SENTINELS": ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels),
            "CIO_REDIS_SENTINEL_MASTER": MASTER,
            "CIO_REDIS_SENTINEL_PASSWORD": self.sentinel_password,
        }

    def url(self, role: str) -> str:
        """`role`'s URL. Its host and port are the primary's at start; clients through Sentinel ignore them."""
        return access.redis_url(role, self.primary.port, self.passwords)

    def admin(self, server: ServerProcess) -> redis.Redis:
        return redis.Redis(port=server.port, username="admin", password=self.admin_password, socket_timeout=2)

    def sentinel(self, index: int = 0) -> redis.Redis:
        return redis.Redis(port=self.sentinels[index].port, password=self.sentinel_password, socket_timeout=2)

    def primary_port(self, index: int = 0) -> int:
        _host, port = self.sentinel(index).sentinel_get_master_addr_by_name(MASTER)
        return int(port)

    def wait_ready(self, timeout_s: float = 20.0) -> None:
        """Every Sentinel knows the other two and the replica, and the replica is in sync: a failover can elect."""

        def ready() -> bool:
            for index in range(len(self.sentinels)):
                client = self.sentinel(index)
                peers = client.sentinel_sentinels(MASTER)
                replicas = client.sentinel_slaves(MASTER)
                if len(peers) < len(self.sentinels) - 1 or not any(r["port"] == self.replica.port for r in replicas):
                    return False
            info = self.admin(self.replica).info("replication")
            return bool(info["master_link_status"] == "up")

        _wait(ready, timeout_s, "the Sentinels did not all see each other and the replica")

    def cut_replica_link(self) -> None:
        """The primary stops feeding the replica (its `replica` login is switched off and its link closed): every
        write from now on exists on the primary alone, as when replication lags behind a primary that dies."""
        primary = self.admin(self.primary)
        primary.execute_command("ACL", "SETUSER", "replica", "off")
        primary.execute_command("CLIENT", "KILL", "USER", "replica")
        _wait(
            lambda: self.admin(self.replica).info("replication")["master_link_status"] == "down",
            10,
            "the replica is still linked",
        )

    def kill_primary(self) -> None:
        assert self.primary.proc is not None
        self.primary.kill()  # SIGKILL: no shutdown, no last write to anyone

    def wait_promoted(self, timeout_s: float = 20.0) -> None:
        """Every Sentinel names the replica as the primary, and the replica acts as one."""
        _wait(
            lambda: (
                all(self.primary_port(i) == self.replica.port for i in range(len(self.sentinels)))
                and self.admin(self.replica).info("replication")["role"] == "master"
            ),
            timeout_s,
            "the Sentinels did not promote the replica",
        )

    def stop(self) -> None:
        for server in [*self.sentinels, self.replica, self.primary]:
            server.stop()
