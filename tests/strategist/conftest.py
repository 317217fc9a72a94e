"""Strategist fixtures: the control plane's users and live stack (real NATS, Redis, database), a local
OpenAI-compatible server, and helpers to feed the listener's inputs into Redis."""

from collections.abc import Iterator
from typing import Any

import pytest

from deploy.fake_openai import FakeOpenAI
from policies import services
from policies.models import PolicyVersion
from tests.factories import make_spec
from tests.strategist.helpers import BASE_SPEC


@pytest.fixture
def strategist_stack(stack: Any, redis_url: str) -> Any:
    stack.CIO_STRATEGIST_REDIS_URL = redis_url
    stack.CIO_STRATEGIST_LOCK_TTL_S = 5.0
    return stack


@pytest.fixture
def active_policy(strategist_stack: Any, users: dict[str, Any]) -> PolicyVersion:
    """v1, proposed by officer1, approved and activated by officer2: the officers' baseline."""
    policy = services.propose(
        spec=make_spec(**BASE_SPEC).model_dump(mode="json", by_alias=True), by=users["officer1"], rationale="base"
    )
    services.approve(policy, by=users["officer2"])
    return services.activate(policy, by=users["officer2"])


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _django_test_defaults(fresh_throttles: None, fast_password_hashing: None) -> None:
    """Each test starts with no throttle counts and hashes its users' passwords fast (tests/plugins)."""
