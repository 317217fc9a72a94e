"""The live feed end to end: the ingest stores a batch and announces it through Channels' Redis layer; the web
server (real uvicorn, the ASGI app `make up` runs) reads those decisions back from the audit store and streams
them over a websocket to a signed-in admin user, and refuses anyone else. Whoever holds the feed's Redis
identity can write the channel layer, but the page shows only what the store holds; an idle feed stays open."""

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nats
import orjson
import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels_redis.core import RedisChannelLayer
from django.db import connection as db_connection
from django.test import Client
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from audit.ingest import AuditIngest
from audit.live_feed import GROUP, publish_batch
from audit.presentation import decision_summary
from audit.store.django_db import DjangoAuditStore
from deploy.servers import free_port, wait_for_port
from tests.audit.ingest_helpers import ROOT, create_stream, database_url, publish_records
from tests.audit.records import chain_of
from tests.secured_stack import Secured

PUBLIC_ORIGIN = "https://cio.example.test"
OLD_DROP_S = 5


@contextlib.contextmanager
def web_server(settings, tmp_path: Path, redis_url: str, channels_url: str) -> Iterator[int]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "CIO_CHANNELS_REDIS_URL": channels_url,
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
def web(transactional_db, settings, redis_url: str, tmp_path: Path) -> Iterator[int]:
    with web_server(settings, tmp_path, redis_url, redis_url) as port:
        yield port


@pytest.fixture
def session_cookie(users) -> str:
    client = Client()
    client.force_login(users["viewer"])
    return f"sessionid={client.cookies['sessionid'].value}"


def use_layer(settings, url: str) -> None:
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [url]}}
    }
    channel_layers.backends.clear()


@pytest.fixture
def layer_on_test_redis(settings, redis_url: str) -> None:
    use_layer(settings, redis_url)
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


async def _feed(port: int, cookie: str):
    ws = await connect(
        f"ws://127.0.0.1:{port}/ws/audit/decisions/",
        additional_headers={"Cookie": cookie},
        origin=f"http://127.0.0.1:{port}",
    )
    assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "hello"
    return ws


def _insert(records) -> None:
    try:
        DjangoAuditStore().insert_decisions(records)
    finally:
        db_connection.close()  # the worker thread's own connection: nothing left open at the database's teardown


async def _store(records) -> None:
    await sync_to_async(_insert)(records)


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Secured]:
    (tmp_path / "secured").mkdir()
    stack = Secured(tmp_path / "secured")
    yield stack
    stack.stop()


async def test_the_feed_identity_cannot_show_officers_a_decision_the_store_does_not_hold(
    transactional_db, settings, secured, session_cookie, tmp_path
):
    """The web server and the attacker both hold only the `feed` Redis identity (as `make up` gives them)."""
    stored, unstored = chain_of(2), chain_of(1, gate_id="forger", start=50)
    await _store(stored)
    feed_url = secured.redis_url("feed")
    use_layer(settings, feed_url)  # this process plays the ingest, with the feed's identity
    with web_server(settings, tmp_path, secured.redis_url("control"), feed_url) as port:
        ws = await _feed(port, session_cookie)
        try:
            attacker = RedisChannelLayer(hosts=[feed_url])
            forged = {**decision_summary(stored[0]), "decision": "REJECTED", "reason_codes": ["TRADING_HALTED"]}
            fake = decision_summary(unstored[0])
            # The old message shape (content to display), an id the store never saw, and a real id carrying
            # forged content: each shows only what the store holds.
            await attacker.group_send(GROUP, {"type": "decisions", "decisions": [fake, forged]})
            await attacker.group_send(GROUP, {"type": "decisions", "ids": [unstored[0].decision_id]})
            await attacker.group_send(
                GROUP, {"type": "decisions", "ids": [stored[0].decision_id], "decisions": [forged]}
            )
            await attacker.group_send(GROUP, {"type": "decisions", "ids": ["x" * 10_000, {"nested": 1}, 7]})
            # Channels would call any consumer method named by `type`: say it to the page, or close it.
            await attacker.group_send(GROUP, {"type": "send.json", "decisions": [fake]})
            await attacker.group_send(GROUP, {"type": "websocket.receive", "text": "{}"})
            await attacker.group_send(GROUP, {"type": "no.such.handler"})
            await attacker.group_send(GROUP, {"type": "websocket.disconnect", "code": 1000})
            await attacker.close_pools()
            await publish_batch(stored[1:])  # the ingest's own announcement, last (one channel: FIFO)
            shown = []
            while stored[1].decision_id not in [d["decision_id"] for d in shown]:
                message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                assert message["type"] == "decisions"
                shown += message["decisions"]
        finally:
            await ws.close()
            channel_layers.backends.clear()
    assert [d["decision_id"] for d in shown] == [stored[0].decision_id, stored[1].decision_id]
    assert shown[0] == decision_summary(stored[0])  # the store's record, not the forged content


async def test_an_idle_feed_stays_open(web, session_cookie, layer_on_test_redis):
    """It used to drop after 5 s without traffic: the channel layer's blocking Redis read (5 s) ran into
    redis-py's default socket timeout (5 s) and the consumer died with a TimeoutError."""
    records = chain_of(1)
    await _store(records)
    ws = await _feed(web, session_cookie)
    try:
        await asyncio.sleep(OLD_DROP_S * 2)  # idle for twice the old drop: no event can stand in for elapsed time
        await publish_batch(records)
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
    finally:
        await ws.close()
    assert [d["decision_id"] for d in message["decisions"]] == [records[0].decision_id]


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
