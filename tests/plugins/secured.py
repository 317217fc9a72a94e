"""Redis clients on the stack with the shipped permissions (`secured`, tests/conftest.py), for the tests that
forge with one identity and read with another."""

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from tests.secured_stack import Secured


@pytest.fixture
async def gate_and_control_redis(secured: Secured) -> AsyncIterator[tuple[aioredis.Redis, aioredis.Redis]]:
    """The `gate` identity's client (what an attacker holding a gate's password has) and the control plane's."""
    attacker = aioredis.Redis.from_url(secured.redis_url("gate"))
    control = aioredis.Redis.from_url(secured.redis_url("control"))
    yield attacker, control
    await attacker.aclose()
    await control.aclose()
