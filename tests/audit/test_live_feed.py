"""The live feed end to end: the ingest stores a batch and sends it through Channels' Redis layer; the web server
(real uvicorn, the ASGI app `make up` runs) streams it over a websocket to a signed-in admin user, and refuses
anyone else."""

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nats
import orjson
import pytest
from channels.layers import channel_layers
from django.test import Client
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from audit.ingest import AuditIngest
from audit.live_feed import publish_batch
from audit.store.django_db import DjangoAuditStore
from deploy.servers import free_port, wait_for_port
from tests.audit.ingest_helpers import ROOT, create_stream, database_url, publish_records
from tests.audit.records import chain_of

PUBLIC_ORIGIN = "https://cio.example.test"


@pytest.fixture
def web(transactional_db, settings, redis_url: str, tmp_path: Path) -> Iterator[int]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "CIO_CHANNELS_REDIS_URL": redis_url,
        "CIO_STATE_DIR": str(tmp_path / "state"),
        "SECRET_KEY": settings.SECRET_KEY,  # the sessions this process signs in must be valid there
        "CIO_TRUSTED_ORIGINS": PUBLIC_ORIGIN,  # as behind a TLS-terminating proxy
    }
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "cio_site.asgi:application",
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--no-proxy-headers",
    ]
    with (tmp_path / "web.log").open("ab") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, 30, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def session_cookie(users) -> str:
    client = Client()
    client.force_login(users["viewer"])
    return f"sessionid={client.cookies['sessionid'].value}"


@pytest.fixture
def layer_on_test_redis(settings, redis_url: str) -> None:
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [redis_url]}}
    }
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


async def test_decisions_stream_to_the_admin_as_they_are_ingested(web, session_cookie, layer_on_test_redis, nats_url):
    origin = f"http://127.0.0.1:{web}"
    records = chain_of(12)
    async with connect(
        f"ws://127.0.0.1:{web}/ws/audit/decisions/", additional_headers={"Cookie": session_cookie}, origin=origin
    ) as ws:
        assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "hello"
        nc = await nats.connect(nats_url)
        try:
            await create_stream(nc)
            await publish_records(nc, records)
            ingest = AuditIngest(nc, DjangoAuditStore(), batch_size=5, fetch_timeout_s=0.3, on_stored=publish_batch)
            await ingest.start()
            while await ingest.step():
                pass
            await ingest.close()
        finally:
            await nc.close()
        received = []
        while len(received) < len(records):
            message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
            assert message["type"] == "decisions"
            received += message["decisions"]
    assert [d["decision_id"] for d in received] == [r.decision_id for r in records]
    assert received[1]["reason_codes"] == list(records[1].reason_codes) and received[0]["trace_id"]


async def test_the_feed_refuses_anyone_not_signed_in_or_from_another_site(web, session_cookie):
    url = f"ws://127.0.0.1:{web}/ws/audit/decisions/"
    with pytest.raises((ConnectionClosed, InvalidStatus)):
        async with connect(url, origin=f"http://127.0.0.1:{web}") as ws:
            await asyncio.wait_for(ws.recv(), 10)
    with pytest.raises(InvalidStatus):  # a page on another site using the officer's cookie
        async with connect(url, additional_headers={"Cookie": session_cookie}, origin="http://evil.example") as ws:
            await asyncio.wait_for(ws.recv(), 10)


async def _handshake(port: int, cookie: str, origin: str) -> str | int:
    """The feed's first message type, or the HTTP status the handshake was refused with."""
    try:
        async with connect(
            f"ws://127.0.0.1:{port}/ws/audit/decisions/", additional_headers={"Cookie": cookie}, origin=origin
        ) as ws:
            return orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"]
    except InvalidStatus as exc:
        return exc.response.status_code


async def test_the_feed_compares_scheme_host_and_port_exactly(web, session_cookie):
    assert await _handshake(web, session_cookie, f"http://127.0.0.1:{web}") == "hello"  # the admin's own page
    assert await _handshake(web, session_cookie, PUBLIC_ORIGIN) == "hello"  # listed in CIO_TRUSTED_ORIGINS
    refused = [
        f"http://127.0.0.1:{web + 1}",  # another service on the same host: another origin
        "http://127.0.0.1",  # the same host on port 80
        f"https://127.0.0.1:{web}",  # another scheme
        f"http://localhost:{web}",  # an allowed host, but not the one this socket was opened on
        f"{PUBLIC_ORIGIN}:8443",
        "http://cio.example.test",
        f"http://127.0.0.1:{web}.evil.example",
        f"http://user@127.0.0.1:{web}",
        "null",
    ]
    for origin in refused:
        assert await _handshake(web, session_cookie, origin) == 403, origin


def test_origins_parse_to_scheme_host_and_explicit_port():
    from cio_site.origins import parse_origin

    assert parse_origin("http://127.0.0.1:8000") == ("http", "127.0.0.1", 8000)
    assert parse_origin("HTTPS://CIO.Example.com") == ("https", "cio.example.com", 443)
    assert parse_origin("http://[::1]:80") == ("http", "::1", 80)
    for bad in ("null", "ftp://x", "http://x:99999", "http://x/path", "http://x?q", "127.0.0.1:8000", ""):
        assert parse_origin(bad) is None, bad
