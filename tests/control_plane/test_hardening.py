"""Hostile input answers 400/413/404 in the envelope, never 500; secrets at rest are hashes or private files;
the policy schema takes values for what they are. (The brakes on guessing logins and tokens: test_brakes.py.)"""

import asyncio
import stat

import orjson
import pytest
from django.conf import settings
from pydantic import ValidationError
from rest_framework.test import APIClient

from cio_kernel.policy.spec import PolicySpec
from policies.models import MAX_SPEC_BYTES, ApiToken, PolicyVersion
from tests.control_plane.helpers import body

HOSTILE = {
    "20 MB body": (b'{"spec": {"description": "' + b"x" * (20 * 1024 * 1024) + b'"}}', 413, "PAYLOAD_TOO_LARGE"),
    "3 MB description": (b'{"spec": {"description": "' + b"x" * (3 * 1024 * 1024) + b'"}}', 413, "PAYLOAD_TOO_LARGE"),
    "100k-deep nesting": (b"[" * 100_000 + b"]" * 100_000, 400, "VAL_ERR"),
    "integer above 2^64": (b'{"spec": {"global": {"max_leverage": 123456789012345678901234567890}}}', 400, "VAL_ERR"),
    "lone surrogate": (b'{"spec": {"description": "\\ud800"}, "rationale": "x"}', 400, "VAL_ERR"),
    "not UTF-8": (b'{"spec": {}, "rationale": "\xff\xfe"}', 400, "VAL_ERR"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_bodies_are_answered_in_the_envelope(api, stack, name):
    payload, status, code = HOSTILE[name]
    response = api["officer1"].post("/api/policy/propose", payload, content_type="application/json")
    assert response.status_code == status, response.content[:300]
    assert body(response)["error"]["code"] == code
    assert not PolicyVersion.objects.exists()


def test_a_description_over_its_limit_is_a_field_error(api, stack):
    spec = {"description": "x" * 10_001}
    response = api["officer1"].post("/api/policy/propose", {"spec": spec}, format="json")
    assert response.status_code == 400 and "description" in body(response)["error"]["message"]


def test_a_policy_over_the_size_bound_is_refused(api, stack):
    symbols = {f"S{i:06d}USDT": {"max_order_quantity": 1.5} for i in range(20_000)}  # about 800 KB compact
    response = api["officer1"].post("/api/policy/propose", {"spec": {"symbols": symbols}}, format="json")
    assert response.status_code == 400
    assert f"{MAX_SPEC_BYTES:,}" in body(response)["error"]["message"]


def test_policies_are_stored_compact(api, stack):
    symbols = {f"S{i:04d}USDT": {"max_order_quantity": 1.5} for i in range(2_000)}
    created = body(api["officer1"].post("/api/policy/propose", {"spec": {"symbols": symbols}}, format="json"))
    stored = PolicyVersion.objects.get(version=created["data"]["version"]).spec
    assert stored["symbols"]["S0001USDT"] == {"max_order_quantity": 1.5}  # no nulls for the unset limits
    assert len(orjson.dumps(stored)) < 100_000


@pytest.mark.parametrize(
    "rules",
    [
        {"max_order_notional_usd": "25000"},
        {"require_stop_loss": "yes"},
        {"require_stop_loss": 1},
        {"max_leverage": True},
    ],
)
def test_the_policy_schema_does_not_coerce(rules):
    with pytest.raises(ValidationError):
        PolicySpec.parse({"global": rules})
    assert (
        PolicySpec.parse({"global": {"max_order_notional_usd": 25000}}).global_rules.max_order_notional_usd == 25000.0
    )


def test_tokens_are_stored_only_as_hashes(users, stack):
    token, key = ApiToken.issue(users["viewer"])
    assert key not in str(ApiToken.objects.filter(pk=token.pk).values().first())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/gate").status_code == 200


def test_static_paths_that_climb_out_are_404(tmp_path):
    from cio_site.asgi import application

    async def get(path: str) -> int:
        messages = [{"type": "http.request", "body": b"", "more_body": False}]
        sent: list[dict] = []

        async def receive() -> dict:
            if messages:
                return messages.pop(0)
            await asyncio.sleep(3600)  # the client stays connected until the response is sent
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [],
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "scheme": "http",
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 5000),
        }
        await application(scope, receive, send)
        return sent[0]["status"]

    for path in ("/static/../manage.py", "/static/admin/../../../../etc/passwd"):
        assert asyncio.run(get(path)) == 404
    assert asyncio.run(get("/static/admin/css/base.css")) == 200


def test_the_local_secret_key_is_generated_privately(tmp_path):
    from cio_site.settings import _local_secret_key

    key = _local_secret_key(tmp_path)
    assert len(key) >= 50 and _local_secret_key(tmp_path) == key
    assert stat.S_IMODE((tmp_path / "secret-key").stat().st_mode) == 0o600
    assert "insecure" not in settings.SECRET_KEY
