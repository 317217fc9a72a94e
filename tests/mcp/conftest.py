"""MCP over real HTTP: the ASGI app `make up` serves (uvicorn, no lifespan), on the test's database, NATS and
Redis, with the SDK's own client and each role's bearer token."""

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from deploy.fake_tradeengine import FakeTradeEngine
from deploy.servers import free_port
from policies.models import ApiToken
from tests.audit.ingest_helpers import database_url
from tests.control_plane.web import running_web


@pytest.fixture
def engine() -> Iterator[FakeTradeEngine]:
    server = FakeTradeEngine().start()
    yield server
    server.stop()


@pytest.fixture
def web(stack: Any, tmp_path: Any, engine: FakeTradeEngine, transactional_db: None) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "NATS_URL": stack.NATS_URL,
        "REDIS_URL": stack.REDIS_URL,
        "CIO_STATE_DIR": str(tmp_path / "state"),
        "CIO_POLICY_SIGNING_KEY_FILE": str(stack.CIO_POLICY_SIGNING_KEY_FILE),
        "CIO_AUDIT_STORE": "django",
        "CIO_TRADEENGINE_URL": engine.url,
        "CIO_MCP_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SECRET_KEY": stack.SECRET_KEY,  # admin sessions signed in here are valid there
    }
    with running_web(env, tmp_path / "web.log", port) as url:
        yield url


@pytest.fixture
def tokens(users: Any) -> dict[str, str]:
    return {name: ApiToken.issue(user)[1] for name, user in users.items()}


@pytest.fixture
def connect(web: str, tokens: dict[str, str]) -> Any:
    """`async with connect("agent") as client:` an MCP client session with that user's bearer token."""

    @asynccontextmanager
    async def session(who: str | None, token: str | None = None) -> AsyncIterator[Client]:
        headers = {"Authorization": f"Bearer {token or tokens[who]}"} if (who or token) else {}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(f"{web}/mcp", http_client=http)) as client,
        ):
            yield client

    return session


@pytest.fixture(autouse=True)
def _django_test_defaults(fresh_throttles: None, fast_password_hashing: None) -> None:
    """Each test starts with no throttle counts and hashes its users' passwords fast (tests/plugins)."""
