"""The one way every component says "Sentinel" (cio_kernel.redis_clients): parsed strictly, the component's own
login kept for the primary, the Sentinels' login kept apart and never printed, and nothing changed without it.
Connecting through real Sentinels, before and after a failover, is tests/control_plane/test_redis_failover.py."""

from pathlib import Path

import pytest
from kombu import Connection
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
from redis.sentinel import SentinelConnectionPool

from cio_kernel.redis_clients import SentinelConfig, async_client, celery_broker, channels_host, sync_client
from gate.config import GateSettings

URL = "redis://gate:s3cret%2F@10.0.0.9:6379/2"
SENTINELS = SentinelConfig.parse("s1:26379, s2:26380,[::1]:26381", "cio-prod", password="sentinel-pw")


def test_parsed_hosts_master_and_login() -> None:
    assert SENTINELS is not None
    assert SENTINELS.hosts == (("s1", 26379), ("s2", 26380), ("::1", 26381))
    assert SENTINELS.master == "cio-prod"
    assert SentinelConfig.parse("s1:1").master == "cio"  # type: ignore[union-attr]
    assert "sentinel-pw" not in repr(SENTINELS)


def test_no_sentinels_means_none_and_a_malformed_entry_fails() -> None:
    assert SentinelConfig.parse("") is None
    assert SentinelConfig.parse(" , ") is None
    # "²" made `int` raise its own message; "٢٦٣٧٩" (Arabic-Indic digits) was read as port 26379.
    for bad in ("s1", "s1:", ":26379", "s1:port", "s1:70000", "s1:²", "s1:٢٦٣٧٩"):
        with pytest.raises(ValueError, match="host:port"):
            SentinelConfig.parse(bad)


def test_the_password_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "sentinel-password"
    secret.write_text("from-file\n")
    config = SentinelConfig.from_env({"CIO_REDIS_SENTINELS": "s1:1", "CIO_REDIS_SENTINEL_PASSWORD_FILE": str(secret)})
    assert config is not None and config.password == "from-file"
    assert config.sentinel_kwargs()["password"] == "from-file"


def test_without_sentinels_the_clients_are_the_urls() -> None:
    client = sync_client(URL, None, socket_timeout=1)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["username"]) == ("10.0.0.9", 6379, 2, "gate")
    assert type(client.connection_pool) is not SentinelConnectionPool
    assert celery_broker(URL, None) == (URL, {})
    assert channels_host(URL, None, socket_timeout=30) == {"address": URL, "socket_timeout": 30}


def test_through_sentinels_the_primary_gets_the_components_login() -> None:
    for client, pool_type in (
        (sync_client(URL, SENTINELS, socket_timeout=1), SentinelConnectionPool),
        (async_client(URL, SENTINELS, socket_timeout=1), AsyncSentinelPool),
    ):
        pool = client.connection_pool
        assert isinstance(pool, pool_type) and pool.service_name == "cio-prod"
        kwargs = pool.connection_kwargs
        assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("gate", "s3cret/", 2)
        assert "host" not in kwargs  # the Sentinels say where the primary is
        sentinel_login = pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs
        assert sentinel_login["password"] == "sentinel-pw" and sentinel_login.get("username") is None


def test_celery_lists_every_sentinel_with_the_brokers_login() -> None:
    url, options = celery_broker("redis://celery:p%40ss@primary:6379/0", SENTINELS)
    assert url == (
        "sentinel://celery:p%40ss@s1:26379/0;sentinel://celery:p%40ss@s2:26380/0;sentinel://celery:p%40ss@[::1]:26381/0"
    )
    timeouts = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}  # a dead Sentinel is skipped in 2 s
    assert options == {"master_name": "cio-prod", "sentinel_kwargs": {"password": "sentinel-pw", **timeouts}}
    connection = Connection(url, transport_options=options)  # kombu reads it as its Sentinel transport
    assert connection.transport_cls == "sentinel" and (connection.userid, connection.password) == ("celery", "p@ss")


def test_channels_gets_sentinels_and_the_feeds_login() -> None:
    host = channels_host("redis://feed:pw@primary:6379/0", SENTINELS, socket_timeout=30)
    assert host["sentinels"] == list(SENTINELS.hosts) and host["master_name"] == "cio-prod"  # type: ignore[union-attr]
    assert (host["username"], host["password"], host["db"], host["socket_timeout"]) == ("feed", "pw", 0, 30)
    assert host["sentinel_kwargs"] == {"password": "sentinel-pw", "socket_timeout": 2.0, "socket_connect_timeout": 2.0}


def test_the_gate_reads_the_same_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GateSettings().redis_sentinel() is None
    monkeypatch.setenv("CIO_REDIS_SENTINELS", "s1:26379,s2:26379")
    monkeypatch.setenv("CIO_REDIS_SENTINEL_MASTER", "cio-prod")
    monkeypatch.setenv("CIO_REDIS_SENTINEL_PASSWORD", "sentinel-pw")
    settings = GateSettings()
    assert settings.redis_sentinel() == SentinelConfig((("s1", 26379), ("s2", 26379)), "cio-prod", None, "sentinel-pw")
    assert "sentinel-pw" not in repr(settings)
