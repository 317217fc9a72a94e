"""The published OpenAPI schema is true: schemathesis generates requests for every operation from the schema
itself and sends them, as each role that can hold API credentials and anonymously, to the control plane's WSGI
application over the test's real database (with real NATS, Redis and the trade-engine stand-in behind it). Every
answer must be no 5xx, a status code, content type and body the schema documents for that operation, and, when it
is an error, the error envelope (docs/contracts.md). Bounded and derandomized: the same requests every run."""

from collections import defaultdict
from typing import Any

import orjson
import pytest
import schemathesis
from django.contrib.auth.models import Group, User
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rest_framework import throttling
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from audit.store import get_store
from core import roles
from deploy.fake_tradeengine import FakeTradeEngine
from policies import impact
from policies import services as policy_services
from policies.models import ApiToken
from tests.audit.records import chain_of
from tests.control_plane.helpers import body
from tests.factories import make_spec
from tradeconfig import services as config_services

pytestmark = pytest.mark.django_db(transaction=True)
# Runs in both of make test's passes on purpose: PostgreSQL is stricter than SQLite about what text and numbers a
# query may hold (a NUL character answered 500 there only), and it is the production database.

# Every role that can hold an API token, plus an account with no role and no credentials at all.
ROLES = [roles.RISK_OFFICER, roles.AGENT, roles.VIEWER, roles.STRATEGIST, "no_role", "anonymous"]


def in_the_envelope(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error (4xx and 5xx) is the error envelope, whatever the operation documents."""
    if response.status_code < 400:
        return None
    body(response)  # asserts the envelope's shape, `success` false and a stable error code
    return True


OK = {200, 201, 202}
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    in_the_envelope,
]


@pytest.fixture
def api_schema(stack: Any, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    # Request-rate throttles stay on (their 429 is part of the contract) but far above what the fuzzer sends, so
    # it explores the operations rather than the brake; production's rates are untouched (brakes/throttles.py).
    monkeypatch.setattr(throttling.SimpleRateThrottle, "THROTTLE_RATES", {"anon": "100000/min", "user": "100000/min"})
    engine = FakeTradeEngine(token="te-token").start()
    settings.CIO_TRADEENGINE_URL, settings.CIO_TRADEENGINE_TOKEN = engine.url, "te-token"
    document = orjson.loads(orjson.dumps(SchemaGenerator().get_schema(request=None, public=True)))
    schema = schemathesis.openapi.from_dict(document)
    schema.app = WSGIHandler()
    yield schema
    engine.stop()


@pytest.fixture
def existing(api_schema: Any, active_v1: Any, users: dict[str, User]) -> dict[str, list[Any]]:
    """Objects for path parameters, so operations answer from real rows and not only 404: the active version, a
    proposed one (with an impact preview) and an approved one, a proposed configuration change, and decisions in the
    audit store."""
    spec = make_spec(min_confidence=0.7).model_dump(mode="json", by_alias=True)
    proposed = policy_services.propose(spec=spec, by=users["officer1"], rationale="contract")
    approved = policy_services.propose(spec=spec, by=users["officer1"], rationale="contract")
    policy_services.approve(approved, by=users["officer2"])
    change = config_services.propose(by=users["officer1"], parameters={"leverage": 5}, rationale="contract")
    decisions = chain_of(2)
    get_store().insert_decisions(decisions)
    impact.start(by=users["officer1"], candidate=proposed)  # a preview to read back
    return {
        "version": [active_v1.version, proposed.version, approved.version],
        "change_id": [change.pk],
        "decision_id": [d.decision_id for d in decisions],
        "trace_id": [d.trace_id for d in decisions],
    }


@pytest.fixture
def credentials(users: dict[str, User]) -> dict[str, dict[str, str]]:
    """The headers each role sends: its own API token (none when anonymous)."""
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    for role in ROLES[:-1]:
        user = User.objects.create_user(f"contract-{role}")
        if role in roles.ROLE_PERMISSIONS:
            user.groups.add(Group.objects.get(name=role))
        headers[role] = {"Authorization": f"Token {ApiToken.issue(user)[1]}"}
    return headers


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_as_its_schema_says(
    role: str, api_schema: Any, existing: dict[str, list[Any]], credentials: dict[str, dict[str, str]]
) -> None:
    failures, seen = [], defaultdict(set)
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(), pick=st.integers(0, 3))
        @settings(
            max_examples=4,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def answers_as_documented(case: Any, pick: int) -> None:
            for name in case.path_parameters or {}:
                if pick < len(existing[name]):  # otherwise the generated value, most likely nothing there
                    case.path_parameters[name] = existing[name][pick]
            response = case.call_and_validate(headers=credentials[role], checks=CHECKS)
            seen[case.operation.label].add(response.status_code)

        try:
            answers_as_documented()
        except (AssertionError, FailureGroup, Failure) as exc:
            # Every operation is tried before the test fails, so one run names everything the schema gets wrong.
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    # Not vacuous: an officer reads every resource successfully, so every success schema was checked against a
    # real answer; a state change got through; and without a role or a token every operation is refused.
    if role == roles.RISK_OFFICER:
        assert {label for label, statuses in seen.items() if label.startswith("GET") and not statuses & OK} == set()
        assert seen["POST /api/trading-state"] & OK
    if role in ("no_role", "anonymous"):
        refused = {403} if role == "no_role" else {401}
        assert {label for label, statuses in seen.items() if "health" not in label and statuses & OK} == set()
        assert all(statuses & refused for label, statuses in seen.items() if "health" not in label)


def test_a_unicode_digit_is_a_400_not_a_500(api, active_v1):
    """Unicode digits ("²", "١") pass `str.isdigit()` but not `int()`: these answered 500 (`core/numbers.py`)."""
    for url in (
        "/api/policy/version/1/diff?against=%C2%B2",
        "/api/incidents?limit=%C2%B2",
        "/api/audit?limit=%C2%B2",
        "/api/audit?policy_version=%D9%A1",
    ):
        response = api["viewer"].get(url)
        assert response.status_code == 400 and body(response)["error"]["code"] == "VAL_ERR", url


def test_a_nul_character_in_a_path_or_query_is_a_400_not_a_500(api, active_v1):
    """PostgreSQL cannot compare text holding NUL: each of these answered 500 there (core/api.py refuses them)."""
    for url in (
        "/api/audit/a%00b",
        "/api/trace/a%00b",
        "/api/audit?symbol=A%00B",
        "/api/audit?gate_id=a%00b",
        "/api/audit?trace_id=a%00b",
        "/api/audit?decision_id=a%00b",
        "/api/audit?signal_id=a%00b",
        "/api/audit?reason_code=A%00B",
        "/api/incidents?similar_to=a%00b",
        "/api/policy?unknown%00=1",
    ):
        response = api["viewer"].get(url)
        assert response.status_code == 400 and body(response)["error"]["code"] == "VAL_ERR", url
    assert api["anonymous"].get("/api/audit/a%00b").status_code == 401  # credentials are still asked for first


def test_the_published_schema_wraps_every_answer_in_the_envelope(api, tmp_path):
    """What clients are generated from: success bodies are the envelope around `data`, errors the error envelope.
    And it is generated without a warning: a view whose answer drf-spectacular cannot see (no response schema)
    or a name it has to invent for clients fails here, where the fuzzer would accept any `data` for it."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    schema = api["anonymous"].get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/policy/version"]["get"]
    listed = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert (
        listed["required"] == ["success", "data", "trace_id", "error"]
        and listed["properties"]["data"]["type"] == "array"
    )
    assert {"400", "401", "403", "429"} <= set(operation["responses"])
    refused = operation["responses"]["403"]["content"]["application/json"]["schema"]
    assert refused == {"$ref": "#/components/schemas/ErrorEnvelope"}
