"""REST API: the workflow over HTTP, roles, and the envelope (docs/contracts.md) on every response including errors."""

import orjson
import pytest

from tests.control_plane.helpers import body, redis_policy
from tests.factories import make_spec, signed_heartbeat


def spec(**rules):
    return make_spec(**rules).model_dump(mode="json", by_alias=True)


def test_full_workflow_over_rest(api, stack, redis_client):
    created = body(
        api["officer1"].post(
            "/api/policy/propose", {"spec": spec(min_confidence=0.6), "rationale": "first"}, format="json"
        )
    )
    version = created["data"]["version"]
    assert created["data"]["status"] == "proposed" and created["data"]["proposed_by"] == "officer1"
    denied = api["officer1"].post(f"/api/policy/version/{version}/approve", {}, format="json")
    assert denied.status_code == 403 and body(denied)["error"]["code"] == "FOUR_EYES_VIOLATION"
    approved = body(api["officer2"].post(f"/api/policy/version/{version}/approve", {"reason": "ok"}, format="json"))
    assert approved["data"]["status"] == "approved" and approved["data"]["decided_by"] == "officer2"
    active = body(api["officer2"].post(f"/api/policy/version/{version}/activate", format="json"))
    assert active["data"]["status"] == "active"
    assert redis_policy(redis_client).version == version
    current = body(api["viewer"].get("/api/policy"))
    assert current["data"]["version"] == version and current["data"]["spec"]["global"]["min_confidence"] == 0.6

    proposed = body(
        api["agent"].post("/api/policy/propose", {"spec": spec(min_confidence=0.7), "thought_id": "t-1"}, format="json")
    )["data"]
    assert proposed["proposer_kind"] == "agent"
    diff = body(api["viewer"].get(f"/api/policy/version/{proposed['version']}/diff"))["data"]
    assert diff["from_version"] == version
    assert diff["text"] == ["~ global.min_confidence: 0.6 → 0.7 (tightens)"]
    assert [c["direction"] for c in diff["changes"]] == ["tightens"]
    assert diff["counts"] == {"tightens": 1, "loosens": 0, "neutral": 0} and diff["summary"] == "1 tightens"
    listed = body(api["viewer"].get("/api/policy/version?status=proposed"))["data"]
    assert [v["version"] for v in listed] == [proposed["version"]]
    events = body(api["viewer"].get("/api/policy/event"))["data"]
    assert [e["kind"] for e in events][:2] == ["proposed", "activated"]


def test_trading_state_over_rest(api, active_v1, redis_client):
    halted = api["agent"].post(
        "/api/trading-state", {"scope": "global", "state": "halted", "reason": "spike"}, format="json"
    )
    assert halted.status_code == 201 and body(halted)["data"]["status"] == "active"
    assert body(api["viewer"].get("/api/trading-state"))["data"]["global"] == "halted"
    release = api["agent"].post(
        "/api/trading-state", {"scope": "global", "state": "active", "reason": "calm"}, format="json"
    )
    assert release.status_code == 403 and body(release)["error"]["code"] == "PERMISSION_DENIED"
    assert redis_policy(redis_client).spec.global_rules.trading_state == "halted"


@pytest.mark.parametrize("redis_up", [True, False])
def test_a_kill_switch_on_any_spelling_of_a_strategy_halts_it_over_rest(api, active_v1, redis_proc, redis_up):
    if not redis_up:
        redis_proc.stop()  # then the halt reaches the gates as a signed notice, under the strategy's key
    halted = api["officer1"].post(
        "/api/trading-state",
        {"scope": "strategy", "key": "Momentum-1", "state": "halted", "reason": "drift"},
        format="json",
    )
    assert halted.status_code == 201, body(halted)
    data = body(halted)["data"]
    if redis_up:
        assert body(api["viewer"].get("/api/trading-state"))["data"]["strategies"] == {"momentum_1": "halted"}
    else:
        assert data["pending_state"] == {"scope": "strategy", "key": "momentum_1", "state": "halted"}


def test_a_kill_switch_on_a_lower_case_symbol_is_a_400_naming_the_symbol(api, active_v1):
    response = api["officer1"].post(
        "/api/trading-state", {"scope": "symbol", "key": "btc/usdt", "state": "halted", "reason": "x"}, format="json"
    )
    assert response.status_code == 400 and body(response)["error"]["code"] == "VAL_ERR"
    assert "BTCUSDT" in body(response)["error"]["message"]


def test_gate_status_reads_heartbeats_from_redis(api, active_v1, redis_client):
    redis_client.set("gate:heartbeat:g-1", signed_heartbeat("g-1", uptime_s=12.5, counters={"received": 3}), ex=10)
    tampered = orjson.loads(signed_heartbeat("g-2", counters={"received": 3}))
    redis_client.set("gate:heartbeat:g-2", orjson.dumps({**tampered, "policy_version": 9}), ex=10)
    data = body(api["viewer"].get("/api/gate"))["data"]
    assert data["active_policy_version"] == 1
    assert [g["gate_id"] for g in data["gates"]] == ["g-1"] and data["gates"][0]["counters"]["received"] == 3
    [unverified] = data["unverified_gates"]
    assert unverified["gate_id"] == "g-2" and "signature does not verify" in unverified["problem"]
    assert unverified["claims"]["policy_version"] == 9


def test_openapi_schema_is_generated(api):
    response = api["viewer"].get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    text = response.content.decode()
    routes = ("/api/policy/propose", "/api/policy/version/{version}/approve", "/api/trading-state", "/api/gate")
    for route in (*routes, "/api/audit", "/api/audit/{decision_id}", "/api/trace/{trace_id}", "/api/incidents"):
        assert route in text


# -- every endpoint, bad input: always the envelope, always a stable code ----------------------------------------
ENDPOINTS = [
    ("get", "/api/policy"),
    ("get", "/api/policy/version"),
    ("get", "/api/policy/version/1"),
    ("get", "/api/policy/version/1/diff"),
    ("post", "/api/policy/propose"),
    ("post", "/api/policy/version/1/approve"),
    ("post", "/api/policy/version/1/reject"),
    ("post", "/api/policy/version/1/activate"),
    ("post", "/api/policy/version/1/rollback"),
    ("get", "/api/policy/event"),
    ("get", "/api/trading-state"),
    ("post", "/api/trading-state"),
    ("get", "/api/gate"),
]


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_unauthenticated_requests_get_the_envelope(api, method, url):
    response = getattr(api["anonymous"], method)(url, format="json")
    assert response.status_code == 401
    assert body(response)["error"]["code"] == "NOT_AUTHENTICATED"


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_users_without_a_role_are_refused(api, method, url):
    response = getattr(api["nobody"], method)(url, format="json")
    assert response.status_code == 403 and body(response)["error"]["code"] == "PERMISSION_DENIED"


@pytest.mark.parametrize(("method", "url"), [e for e in ENDPOINTS if e[0] == "get"])
def test_wrong_method_gets_the_envelope(api, method, url):
    response = api["officer1"].delete(url)
    assert response.status_code == 405 and body(response)["error"]["code"] == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize(
    ("url", "payload", "code", "status"),
    [
        ("/api/policy/propose", {}, "VAL_ERR", 400),
        ("/api/policy/propose", {"spec": "not an object"}, "VAL_ERR", 400),
        ("/api/policy/propose", {"spec": {"global": {"min_confidence": 2}}}, "VAL_ERR", 400),
        ("/api/policy/propose", ["a", "list"], "VAL_ERR", 400),
        ("/api/policy/version/999/approve", {}, "NOT_FOUND", 404),
        ("/api/policy/version/1/approve", {"reason": 5 * "x" * 5000}, "VAL_ERR", 400),
        ("/api/policy/version/1/reject", {}, "VAL_ERR", 400),
        ("/api/policy/version/999/activate", {}, "NOT_FOUND", 404),
        ("/api/policy/version/1/activate", {}, "INVALID_TRANSITION", 409),
        ("/api/policy/version/1/rollback", {"reason": ""}, "VAL_ERR", 400),
        ("/api/trading-state", {"scope": "moon", "state": "halted", "reason": "x"}, "VAL_ERR", 400),
        ("/api/trading-state", {"scope": "global", "state": "frozen", "reason": "x"}, "VAL_ERR", 400),
        ("/api/trading-state", {"scope": "symbol", "state": "halted", "reason": "x"}, "VAL_ERR", 400),
        ("/api/trading-state", {"scope": "global", "state": "halted"}, "VAL_ERR", 400),
    ],
)
def test_bad_input_is_rejected_with_a_code(api, active_v1, url, payload, code, status):
    response = api["officer1"].post(url, payload, format="json")
    assert response.status_code == status, response.content
    data = body(response)
    assert data["error"]["code"] == code
    if code == "VAL_ERR" and "field_errors" in (data["data"] or {}):
        assert data["data"]["field_errors"]


def test_malformed_json_and_unknown_urls(api):
    response = api["officer1"].post("/api/policy/propose", b"{nope", content_type="application/json")
    assert response.status_code == 400 and body(response)["error"]["code"] == "VAL_ERR"
    response = api["officer1"].post("/api/policy/propose", b"a=b", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and body(response)["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    response = api["officer1"].get("/api/nothing/here")
    assert response.status_code == 404 and body(response)["error"]["code"] == "NOT_FOUND"
    response = api["officer1"].get("/api/policy/version?status=bogus")
    assert response.status_code == 400 and body(response)["error"]["code"] == "VAL_ERR"
    response = api["officer1"].get("/api/policy/version/1/diff?against=yesterday")
    assert response.status_code in (400, 404) and body(response)["error"]["code"] in ("VAL_ERR", "NOT_FOUND")


def test_no_active_policy_is_a_clean_404(api, users):
    response = api["viewer"].get("/api/policy")
    assert response.status_code == 404 and body(response)["error"]["code"] == "NOT_FOUND"


def test_incoming_traceparent_sets_the_trace_id(api, users):
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = api["viewer"].get("/api/policy/version", HTTP_TRACEPARENT=f"00-{trace}-00f067aa0ba902b7-01")
    assert body(response)["trace_id"] == trace


def test_activation_failure_is_a_503_envelope(api, active_v1, users, redis_proc):
    proposed = body(api["officer1"].post("/api/policy/propose", {"spec": spec()}, format="json"))["data"]
    body(api["officer2"].post(f"/api/policy/version/{proposed['version']}/approve", {}, format="json"))
    redis_proc.stop()
    response = api["officer2"].post(f"/api/policy/version/{proposed['version']}/activate", format="json")
    assert response.status_code == 503 and body(response)["error"]["code"] == "ACTIVATION_FAILED"


def test_every_domain_error_has_an_http_status_and_a_code():
    """A new domain error must be given its status on purpose, not fall through to a 500."""
    import inspect

    from core import errors
    from core.envelope import HTTP_STATUS, http_status

    defined = {
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.DomainError) and cls is not errors.DomainError
    }
    assert defined and defined == set(HTTP_STATUS)
    for cls in defined:
        assert cls.code != errors.DomainError.code
        assert 400 <= http_status(cls("x")) < 600
    assert http_status(errors.DomainError("unmapped")) == 500


def test_proposing_twice_over_rest_makes_one_version(api, active_v1):
    request = {"spec": spec(min_confidence=0.7), "rationale": "calmer"}
    first = api["agent"].post("/api/policy/propose", request, format="json")
    again = api["agent"].post("/api/policy/propose", {**request, "rationale": "said twice"}, format="json")
    assert first.status_code == 201 and again.status_code == 200
    assert body(again)["data"] == body(first)["data"]  # the same version, the first rationale
    other = api["agent"].post("/api/policy/propose", {"spec": spec(min_confidence=0.8)}, format="json")
    assert other.status_code == 201 and body(other)["data"]["version"] != body(first)["data"]["version"]

    # An idempotency key names one proposal, whoever sends it.
    def propose(key, **rules):
        return api["officer1"].post(
            "/api/policy/propose", {"spec": spec(**rules)}, format="json", headers={"Idempotency-Key": key}
        )

    keyed = propose("req-7f3a", min_confidence=0.7)
    same_key = propose("req-7f3a", min_confidence=0.7)  # an officer's same spec without the key is a new version
    assert keyed.status_code == 201 and same_key.status_code == 200 and body(same_key)["data"] == body(keyed)["data"]
    reused = propose("req-7f3a", min_confidence=0.8)
    assert reused.status_code == 409 and body(reused)["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert f"v{body(keyed)['data']['version']}" in body(reused)["error"]["message"]
    assert propose("req 7f3a", min_confidence=0.8).status_code == 400  # a space: not a key
    assert propose("req-other", min_confidence=0.7).status_code == 201
