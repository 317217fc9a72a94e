"""One way for every component to reach Redis: directly at its URL, or through Sentinel (docs/redis-ha.md).

Each component keeps its own URL (`REDIS_URL`, `CIO_CHANNELS_REDIS_URL`, `CIO_CELERY_BROKER_URL`, ...), which carries
its own ACL user, password and database (docs/access.md). With `CIO_REDIS_SENTINELS` set, the host and port of that
URL are ignored: the client asks the Sentinels (`CIO_REDIS_SENTINELS`, comma-separated `host:port`) for the primary
of `CIO_REDIS_SENTINEL_MASTER` (default `cio`) and logs in there with the same user and password. After a failover
a connection that fails is dropped and the next one asks the Sentinels again, so every client follows the new
primary by itself. The Sentinels may have their own login (`CIO_REDIS_SENTINEL_USERNAME`, and
`CIO_REDIS_SENTINEL_PASSWORD` or `CIO_REDIS_SENTINEL_PASSWORD_FILE`), distinct from any component's.

Without `CIO_REDIS_SENTINELS` every function here makes exactly the client the URL alone would.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as async_sentinel
import redis.sentinel as sync_sentinel
from redis.connection import parse_url

from cio_kernel.numbers import whole_number

DEFAULT_MASTER = "cio"
SENTINEL_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class SentinelConfig:
    """Where the Sentinels are, which primary they watch, and their own login (never a component's)."""

    hosts: tuple[tuple[str, int], ...]
    master: str = DEFAULT_MASTER
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never printed, whoever prints the settings

    @classmethod
    def parse(
        cls, hosts: str, master: str = "", username: str = "", password: str = "", password_file: str = ""
    ) -> "SentinelConfig | None":
        """None when `hosts` is empty (no Sentinel: connect to the URL's host). Raises ValueError on a malformed
        entry, so a component fails at start rather than connecting somewhere unintended."""
        entries = [entry.strip() for entry in hosts.split(",") if entry.strip()]
        if not entries:
            return None
        parsed = []
        for entry in entries:
            host, sep, port_text = entry.rpartition(":")
            port = whole_number(port_text)
            if not sep or not host or port is None or not 0 < port < 65536:
                raise ValueError(f"CIO_REDIS_SENTINELS: {entry!r} is not host:port")
            parsed.append((host.strip("[]"), port))
        if password_file and not password:
            password = Path(password_file).read_text().strip()
        return cls(tuple(parsed), master.strip() or DEFAULT_MASTER, username or None, password or None)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "SentinelConfig | None":
        return cls.parse(
            environ.get("CIO_REDIS_SENTINELS", ""),
            environ.get("CIO_REDIS_SENTINEL_MASTER", ""),
            environ.get("CIO_REDIS_SENTINEL_USERNAME", ""),
            environ.get("CIO_REDIS_SENTINEL_PASSWORD", ""),
            environ.get("CIO_REDIS_SENTINEL_PASSWORD_FILE", ""),
        )

    def sentinel_kwargs(self, socket_timeout: float | None = None) -> dict[str, Any]:
        """How to talk to the Sentinels themselves: their login, and a short timeout (the component's own, at most
        `SENTINEL_TIMEOUT_S`) so a dead or unreachable Sentinel is skipped quickly, whatever the component waits on
        the primary (the live feed's blocking reads take 30 s)."""
        timeout = min(socket_timeout, SENTINEL_TIMEOUT_S) if socket_timeout is not None else SENTINEL_TIMEOUT_S
        kwargs: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        if self.username:
            kwargs["username"] = self.username
        if self.password:
            kwargs["password"] = self.password
        return kwargs


def _primary_kwargs(url: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The URL's login and database (its host and port are the Sentinels' to say), with the caller's options."""
    parsed = parse_url(url)
    tls = parsed.pop("connection_class", None) is not None  # rediss://: the SSL connection class
    parsed.pop("host", None)
    parsed.pop("port", None)
    parsed.pop("path", None)
    if parsed.pop("unix_socket_path", None) is not None:
        raise ValueError("a unix-socket Redis URL cannot be reached through Sentinel")
    return {**parsed, **({"ssl": True} if tls else {}), **kwargs}


def _timeout(kwargs: Mapping[str, Any]) -> float | None:
    value = kwargs.get("socket_connect_timeout", kwargs.get("socket_timeout"))
    return float(value) if value is not None else None


def async_client(url: str, sentinel: SentinelConfig | None, **kwargs: Any) -> aioredis.Redis:
    """An asyncio client for `url`'s user and database: at `url`, or at the primary the Sentinels name."""
    if sentinel is None:
        return aioredis.Redis.from_url(url, **kwargs)
    manager = async_sentinel.Sentinel(list(sentinel.hosts), sentinel_kwargs=sentinel.sentinel_kwargs(_timeout(kwargs)))
    client: aioredis.Redis = manager.master_for(sentinel.master, **_primary_kwargs(url, kwargs))
    return client


def sync_client(url: str, sentinel: SentinelConfig | None, **kwargs: Any) -> redis.Redis:
    """The same as `async_client`, blocking (the Strategist's cycles run in Celery workers)."""
    if sentinel is None:
        return redis.Redis.from_url(url, **kwargs)
    manager = sync_sentinel.Sentinel(list(sentinel.hosts), sentinel_kwargs=sentinel.sentinel_kwargs(_timeout(kwargs)))
    client: redis.Redis = manager.master_for(sentinel.master, **_primary_kwargs(url, kwargs))
    return client


def celery_broker(url: str, sentinel: SentinelConfig | None) -> tuple[str, dict[str, Any]]:
    """Celery's broker URL and the transport options to add: kombu's `sentinel://` transport lists every Sentinel
    (`;`-separated), each carrying the component's own login for the primary; the Sentinels' login goes in
    `sentinel_kwargs`."""
    if sentinel is None:
        return url, {}
    parts = urlsplit(url)
    login, at, _ = parts.netloc.rpartition("@")  # as written (still percent-encoded), so kombu decodes it once
    login += at
    db = parts.path if parts.path not in ("", "/") else "/0"
    hosts = ";".join(f"sentinel://{login}{_netloc(host, port)}{db}" for host, port in sentinel.hosts)
    return hosts, {"master_name": sentinel.master, "sentinel_kwargs": sentinel.sentinel_kwargs()}


def channels_host(url: str, sentinel: SentinelConfig | None, **kwargs: Any) -> dict[str, Any]:
    """One entry of channels_redis's `hosts`: the URL, or the Sentinels and the primary's name."""
    if sentinel is None:
        return {"address": url, **kwargs}
    return {
        "sentinels": list(sentinel.hosts),
        "master_name": sentinel.master,
        "sentinel_kwargs": sentinel.sentinel_kwargs(_timeout(kwargs)),
        **_primary_kwargs(url, kwargs),
    }


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
