"""Strategist fixtures: the control plane's users and live stack (real NATS, Redis, database), a local
OpenAI-compatible server; on the stack with the shipped permissions (`secured`), the Strategist's own Redis
client, an attacker holding the same identity, the base policy activated by the control plane, and the control
plane's watch. Helpers are in helpers.py."""

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.management.base import OutputWrapper

from deploy.fake_openai import FakeOpenAI
from policies import services
from policies.management.commands.reconcile_policies import Command
from policies.models import PolicyVersion
from tests.factories import TEST_SIGNER, make_spec
from tests.secured_stack import Secured
from tests.strategist.helpers import BASE_SPEC


@pytest.fixture
def strategist_stack(stack: Any, redis_url: str) -> Any:
    stack.CIO_STRATEGIST_REDIS_URL = redis_url
    stack.CIO_STRATEGIST_LOCK_TTL_S = 5.0
    return stack


def _activate_base_policy(users: dict[str, Any]) -> PolicyVersion:
    """v1, proposed by officer1, approved and activated by officer2: the officers' baseline."""
    policy = services.propose(
        spec=make_spec(**BASE_SPEC).model_dump(mode="json", by_alias=True), by=users["officer1"], rationale="base"
    )
    services.approve(policy, by=users["officer2"])
    return services.activate(policy, by=users["officer2"])


@pytest.fixture
def active_policy(strategist_stack: Any, users: dict[str, Any]) -> PolicyVersion:
    return _activate_base_policy(users)


@pytest.fixture
def live_policy(secured: Secured, settings: Any, users: dict[str, Any], tmp_path: Path) -> PolicyVersion:
    """The base policy activated by the control plane under its own identities on the `secured` stack."""
    settings.REDIS_URL = secured.redis_url("control")
    settings.NATS_URL = secured.nats_url("control")
    settings.CIO_NATS_INBOX_PREFIX = "_INBOX.control"
    key_file = tmp_path / "policy-signing.key"
    key_file.write_text(base64.b64encode(TEST_SIGNER.private_key.private_bytes_raw()).decode())
    settings.CIO_POLICY_SIGNING_KEY_FILE = key_file
    return _activate_base_policy(users)


@pytest.fixture
def strategist(secured: Secured, settings: Any) -> redis.Redis:
    """The Strategist's own client: the same identity as the attacker's, and the control plane's secret key."""
    settings.CIO_STRATEGIST_LOCK_TTL_S = 5.0
    return redis.Redis.from_url(secured.redis_url("strategist"))


@pytest.fixture
def attacker(secured: Secured) -> redis.Redis:
    """Someone holding only the `strategist` Redis identity (test_authority.py has its own, with the broker's)."""
    return redis.Redis.from_url(secured.redis_url("strategist"))


@pytest.fixture
def watch(secured: Secured, settings: Any) -> Command:
    """One pass of the control plane's watch (`reconcile_policies`) per `step()`, under the `control` identity."""
    settings.NATS_URL = secured.nats_url("control")
    settings.REDIS_URL = secured.redis_url("control")
    settings.CIO_NATS_INBOX_PREFIX = "_INBOX.control"
    settings.CIO_STRATEGIST_OVERDUE_GRACE_S = 0
    return Command(stdout=OutputWrapper(io.StringIO()), stderr=OutputWrapper(io.StringIO()))


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _django_test_defaults(fresh_throttles: None, fast_password_hashing: None) -> None:
    """Each test starts with no throttle counts and hashes its users' passwords fast (tests/plugins)."""
