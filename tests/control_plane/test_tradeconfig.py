"""The trade engine's configuration through the control plane, against a real local HTTP server implementing
the engine's routes: read through, propose (checked by the contract model and by the engine without saving),
four-eyes approval that pushes, rejection, a push the engine could not take, applied again later."""

import pytest

from deploy.fake_tradeengine import FakeTradeEngine

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def engine(settings):
    server = FakeTradeEngine(token="te-token").start()
    settings.CIO_TRADEENGINE_URL, settings.CIO_TRADEENGINE_TOKEN = server.url, "te-token"
    yield server
    server.stop()


def body(response):
    return response.json()


def propose(api, who="agent", **overrides):
    payload = {"symbol": "BTCUSDT", "side": "LONG", "parameters": {"leverage": 5}, "rationale": "volatility is up"}
    payload.update(overrides)
    return api[who].post("/api/config/change", payload, format="json")


def test_reading_the_configuration_goes_through_to_the_engine(api, engine):
    engine.overrides[("BTCUSDT", None)] = {"leverage": 20}
    answer = body(api["viewer"].get("/api/config?symbol=BTCUSDT&side=LONG"))
    assert answer["success"] and answer["data"]["parameters"]["leverage"] == 20
    assert answer["data"]["parameters"]["stop_loss_pct"] == 2.0  # the engine's default, resolved
    assert body(api["viewer"].get("/api/config?side=LONG"))["error"]["code"] == "VAL_ERR"  # a side needs a symbol


def test_a_proposal_is_checked_and_nothing_reaches_the_engine_until_approved(api, engine):
    response = propose(api)
    assert response.status_code == 201, response.content
    change = body(response)["data"]
    assert change["status"] == "proposed" and change["scope"] == "BTCUSDT LONG"
    assert change["before"] == {"leverage": 10} and change["proposed_by"] == "agent"
    writes = [(m, p, b) for m, p, b in engine.requests if m == "POST"]
    assert [b["validate_only"] for _, _, b in writes] == [True]  # the engine checked it, saved nothing
    assert engine.overrides == {}


@pytest.mark.parametrize(
    ("parameters", "problem"),
    [
        ({"leverage": 500}, "parameters.leverage"),
        ({"leverage": "5"}, "parameters.leverage"),
        ({"lever": 5}, "parameters.lever"),
        ({}, "name at least one parameter"),
    ],
)
def test_invalid_parameters_are_refused_before_the_engine_is_asked(api, engine, parameters, problem):
    answer = body(propose(api, parameters=parameters))
    assert answer["error"]["code"] == "VAL_ERR" and problem in answer["error"]["message"]
    assert engine.requests == []


def test_four_eyes_then_the_push(api, engine):
    change = body(propose(api, who="officer1"))["data"]
    own = body(api["officer1"].post(f"/api/config/change/{change['id']}/approve", {}, format="json"))
    assert own["error"]["code"] == "FOUR_EYES_VIOLATION"
    agent = body(api["agent"].post(f"/api/config/change/{change['id']}/approve", {}, format="json"))
    assert agent["error"]["code"] == "PERMISSION_DENIED"
    applied = body(api["officer2"].post(f"/api/config/change/{change['id']}/approve", {"reason": "ok"}, format="json"))
    assert applied["data"]["status"] == "applied" and applied["data"]["upstream_version"] == 2
    assert engine.overrides[("BTCUSDT", "LONG")] == {"leverage": 5}
    [(_, _, pushed)] = [(m, p, b) for m, p, b in engine.requests if m == "POST" and not b["validate_only"]]
    assert pushed["changed_by"] == "petrosa-cio:officer1/officer2" and pushed["reason"] == "volatility is up"


def test_a_rejection_needs_a_reason_and_ends_the_change(api, engine):
    change = body(propose(api))["data"]
    url = f"/api/config/change/{change['id']}"
    assert body(api["officer2"].post(f"{url}/reject", {}, format="json"))["error"]["code"] == "VAL_ERR"
    assert (
        body(api["officer2"].post(f"{url}/reject", {"reason": "too early"}, format="json"))["data"]["status"]
        == "rejected"
    )
    again = body(api["officer2"].post(f"{url}/approve", {}, format="json"))
    assert again["error"]["code"] == "INVALID_TRANSITION"


def test_an_engine_that_is_away_approves_nothing_and_a_refused_push_is_applied_later(api, engine):
    change = body(propose(api))["data"]
    url = f"/api/config/change/{change['id']}"
    engine.stop()
    away = api["officer2"].post(f"{url}/approve", {}, format="json")
    assert away.status_code == 503 and body(away)["error"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert body(api["viewer"].get(url))["data"]["status"] == "proposed"  # no approval against unseen live values
    engine.start()
    engine.refuse_writes = True  # the engine answers, and certainly did not take it
    failed = api["officer2"].post(f"{url}/approve", {}, format="json")
    assert failed.status_code == 503 and body(failed)["error"]["code"] == "UPSTREAM_UNAVAILABLE"
    stored = body(api["viewer"].get(url))["data"]
    assert stored["status"] == "failed" and "read-only" in stored["upstream_error"]
    assert stored["expected"] == {"leverage": 10}  # what it was approved against
    engine.refuse_writes = False
    applied = body(api["officer2"].post(f"{url}/apply", {}, format="json"))["data"]
    assert applied["status"] == "applied" and engine.overrides[("BTCUSDT", "LONG")] == {"leverage": 5}


def test_a_viewer_reads_but_cannot_propose(api, engine):
    assert body(propose(api, who="viewer"))["error"]["code"] == "PERMISSION_DENIED"
    assert body(api["anonymous"].get("/api/config"))["error"]["code"] == "NOT_AUTHENTICATED"
