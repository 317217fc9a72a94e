"""Control-plane fixtures, for every Django-side test folder (control plane, audit, alerting, Strategist, MCP):
users in each role, API clients with tokens, settings pointed at the test's own NATS and Redis. The database is
SQLite by default and PostgreSQL under `make test`'s second pass. A folder that wants `fresh_throttles` and
`fast_password_hashing` for each of its tests asks for them from an autouse fixture in its conftest."""

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from django.contrib.auth.models import Group, User
from django.test import Client
from rest_framework.test import APIClient

from core import roles
from deploy.servers import free_port
from policies import services
from policies.models import ApiToken, PolicyVersion
from tests.control_plane.helpers import ROOT, _wait
from tests.factories import TEST_AUDIT_PUBLIC_KEY, TEST_PUBLIC_KEY, TEST_SIGNER, make_spec, write_audit_signing_key

ROLES = {
    "officer1": roles.RISK_OFFICER,
    "officer2": roles.RISK_OFFICER,
    "viewer": roles.VIEWER,
    "agent": roles.AGENT,
    "nobody": None,
}


@pytest.fixture
def fresh_throttles() -> None:
    """Throttle and failed-login counters live in the process's cache: each test starts with none."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # test users only


@pytest.fixture
def stack(settings: Any, nats_url: str, redis_url: str, tmp_path: Path) -> Any:
    settings.NATS_URL = nats_url
    settings.REDIS_URL = redis_url
    settings.CIO_ACTIVATION_TIMEOUT_S = 1.0
    # The control plane signs with the tests' key, so every gate the tests start (they trust it) accepts it.
    key_file = tmp_path / "policy-signing.key"
    key_file.write_text(base64.b64encode(TEST_SIGNER.private_key.private_bytes_raw()).decode())
    settings.CIO_POLICY_SIGNING_KEY_FILE = key_file
    settings.CIO_AUDIT_PUBLIC_KEY = TEST_AUDIT_PUBLIC_KEY  # the gates' heartbeats and latch trips verify with it
    return settings


@pytest.fixture
def users(db: Any) -> dict[str, User]:
    from django.contrib.auth.models import Permission

    roles.ensure_roles(Group, Permission)  # a transactional test's flush removes what migrations created
    created = {}
    for name, role in ROLES.items():
        user = User.objects.create_user(name, password=f"{name}-password-123", is_staff=True)
        if role:
            user.groups.add(Group.objects.get(name=role))
        created[name] = user
    return created


@pytest.fixture
def browser(users: dict[str, User]) -> Any:
    """A logged-in admin session for one of the users."""

    def login(name: str) -> Client:
        client = Client()
        assert client.login(username=name, password=f"{name}-password-123")
        return client

    return login


@pytest.fixture
def api(users: dict[str, User]) -> dict[str, APIClient]:
    clients = {}
    for name, user in users.items():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {ApiToken.issue(user)[1]}")
        clients[name] = client
    clients["anonymous"] = APIClient()
    return clients


@pytest.fixture
def redis_client(redis_url: str) -> Any:
    client = sync_redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def active_v1(stack: Any, users: dict[str, User]) -> PolicyVersion:
    """v1 proposed by officer1, approved and activated by officer2: the normal four-eyes path."""
    policy = services.propose(
        spec=make_spec(min_confidence=0.5).model_dump(mode="json", by_alias=True),
        by=users["officer1"],
        rationale="initial policy",
    )
    services.approve(policy, by=users["officer2"])
    return services.activate(policy, by=users["officer2"])


@pytest.fixture
def gate_process(stack: Any, tmp_path: Path, redis_client: Any) -> Any:
    """A real gate process on the test's NATS and Redis, trusting the tests' policy key. It polls Redis only once
    an hour (and its copy stays fresh for two), so within any test a change can only reach it through a NATS
    notice (`cio.strategist.update`, `cio.trading.state`): waiting for the change tests the notice, not a speed."""
    env = {
        **os.environ,
        "NATS_URL": stack.NATS_URL,
        "REDIS_URL": stack.REDIS_URL,
        "CIO_GATE_ID": "flow-gate",
        "CIO_AUDIT_SPOOL_DIR": str(tmp_path / "spool"),
        "CIO_HEARTBEAT_INTERVAL_S": "0.1",
        "CIO_POLICY_REFRESH_S": "3600",
        "CIO_POLICY_MAX_AGE_S": "7200",
        "CIO_POLICY_PUBLIC_KEY": TEST_PUBLIC_KEY,
        "CIO_POLICY_FLOOR_WAIT_S": "0",
        "CIO_AUDIT_SIGNING_KEY_FILE": str(write_audit_signing_key(tmp_path)),
        "CIO_GATE_HEALTH_PORT": str(health_port := free_port()),  # probes and metrics, as in Kubernetes
    }
    log = (tmp_path / "gate.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "gate"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    _wait(lambda: redis_client.get("gate:heartbeat:flow-gate") is not None, 20)
    proc.health_url = f"http://127.0.0.1:{health_port}"  # type: ignore[attr-defined]
    yield proc
    proc.terminate()
    proc.wait(20)
