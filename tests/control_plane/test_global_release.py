"""Releasing the global trading state takes a second risk officer (`CIO_GLOBAL_RELEASE_NEEDS_SECOND_OFFICER`, on by
default), like any loosening: the first officer's release is a request, a second officer's confirms it. Halting
is never held up. Against real Redis, NATS and the database, and a running gate for the end-to-end case."""

import orjson
import pytest

from core import errors
from policies import services
from policies.models import PolicyEvent, PolicyVersion, Status
from tests.control_plane.helpers import _wait, decide_buy, ok, redis_policy
from tests.control_plane.helpers import gate_version as _gate_version


def _global(redis_client) -> str:
    return redis_policy(redis_client).spec.global_rules.trading_state.value


def _halt(users, who="agent"):
    halted, _ = services.set_trading_state(scope="global", state="halted", by=users[who], reason="incident")
    return halted


def test_one_officer_requests_a_second_confirms(active_v1, users, redis_client):
    halted = _halt(users)
    request, created = services.set_trading_state(
        scope="global", state="active", by=users["officer1"], reason="incident over"
    )
    assert created and request.status == Status.PROPOSED and request.based_on_id == halted.pk
    assert request.parsed_spec.global_rules.trading_state == "active" and _global(redis_client) == "halted"
    assert PolicyEvent.objects.get(policy=request, kind="proposed").detail["release_request"] == {
        "scope": "global",
        "from": "halted",
        "to": "active",
    }
    again, created = services.set_trading_state(scope="global", state="active", by=users["officer1"], reason="now")
    assert (again.pk, created) == (request.pk, False) and _global(redis_client) == "halted"  # one officer is not two

    released, created = services.set_trading_state(
        scope="global", state="active", by=users["officer2"], reason="checked the book"
    )
    assert created and released.pk == request.pk and released.status == Status.ACTIVE
    assert released.decided_by == users["officer2"] and released.proposed_by == users["officer1"]
    assert _global(redis_client) == "active" and redis_policy(redis_client).version == request.version
    event = PolicyEvent.objects.get(policy=released, kind="trading_state")
    assert event.detail["requested_by"] == "officer1" and event.detail["confirmed_by"] == "officer2"
    assert (event.detail["from"], event.detail["to"], event.reason) == ("halted", "active", "checked the book")


def test_halting_is_never_held_up_and_a_confirmed_release_keeps_later_halts(active_v1, users, redis_client):
    _halt(users)
    request, _ = services.set_trading_state(scope="global", state="active", by=users["officer1"], reason="over")
    # an agent halts a symbol meanwhile: one step, at once, whatever request is open
    symbol, created = services.set_trading_state(
        scope="symbol", key="DOGEUSDT", state="halted", by=users["agent"], reason="DOGE spiking"
    )
    assert created and symbol.status == Status.ACTIVE
    # engaging the global halt again is answered at once too (it is already engaged)
    assert services.set_trading_state(scope="global", state="halted", by=users["agent"], reason="x")[1] is False
    # the agent cannot keep the release from being confirmed by tightening other scopes: the agreed release is
    # applied to what is live now, and the symbol's halt stays
    released, _ = services.set_trading_state(scope="global", state="active", by=users["officer2"], reason="agreed")
    assert released.pk != request.pk and released.status == Status.ACTIVE and _global(redis_client) == "active"
    assert released.proposed_by == users["officer1"] and released.decided_by == users["officer2"]
    assert redis_policy(redis_client).spec.symbols["DOGEUSDT"].trading_state == "halted"  # not undone
    request.refresh_from_db()
    assert request.status == Status.REJECTED and f"confirmed as v{released.version}" in request.decision_reason
    event = PolicyEvent.objects.get(policy=released, kind="trading_state")
    assert event.detail["request"] == request.version and event.detail["requested_by"] == "officer1"


def test_a_request_lapses_when_the_global_state_changes_after_it(active_v1, users, redis_client):
    _halt(users)
    stale, _ = services.set_trading_state(scope="global", state="active", by=users["officer1"], reason="over")
    eased, _ = services.set_trading_state(scope="global", state="reducing", by=users["officer2"], reason="ease")
    eased, _ = services.set_trading_state(scope="global", state="reducing", by=users["officer1"], reason="ok")
    assert eased.status == Status.ACTIVE and _global(redis_client) == "reducing"
    _halt(users)  # a new incident: a new halt, and a new agreement to release it
    fresh, created = services.set_trading_state(scope="global", state="active", by=users["officer2"], reason="x")
    assert created and fresh.pk != stale.pk and fresh.status == Status.PROPOSED and _global(redis_client) == "halted"
    services.approve(stale, by=users["officer2"])
    with pytest.raises(errors.InvalidTransitionError):  # nor can the stale request go live as a proposal
        services.activate(stale, by=users["officer1"])


def test_a_request_is_also_an_ordinary_proposal_under_four_eyes(active_v1, users, redis_client):
    _halt(users)
    request, _ = services.set_trading_state(scope="global", state="reducing", by=users["officer1"], reason="ease")
    with pytest.raises(errors.FourEyesError):
        services.approve(request, by=users["officer1"])
    services.approve(request, by=users["officer2"], reason="agreed")
    services.activate(request, by=users["officer1"])
    assert _global(redis_client) == "reducing"


def test_nobody_releases_the_global_state_alone(active_v1, users, redis_client):
    _halt(users)
    with pytest.raises(errors.PermissionDeniedError):  # an agent cannot even ask
        services.set_trading_state(scope="global", state="active", by=users["agent"], reason="fine")
    # an officer's own proposal of the released policy is not a request a kill switch could confirm alone
    live = redis_policy(redis_client).spec.model_dump(mode="json", by_alias=True)
    live["global"]["trading_state"] = "active"
    own = services.propose(spec=live, by=users["officer1"], rationale="release, quietly")
    mine, _ = services.set_trading_state(scope="global", state="active", by=users["officer1"], reason="go")
    assert mine.pk != own.pk and mine.status == Status.PROPOSED and _global(redis_client) == "halted"
    assert services.set_trading_state(scope="global", state="active", by=users["officer1"], reason="go")[1] is False
    # an agent cannot plant one either: a release is outside the envelope
    with pytest.raises(errors.OutsideEnvelopeError):
        services.propose(spec=live, by=users["agent"], rationale="release")
    # a rollback to a version from before the halt would release it with one officer: refused
    with pytest.raises(errors.FourEyesError, match="release the global trading state"):
        services.rollback(active_v1, by=users["officer1"], reason="back to v1")
    assert _global(redis_client) == "halted"


def test_a_request_lapses_when_its_officer_loses_the_role(active_v1, users, redis_client):
    _halt(users)
    services.set_trading_state(scope="global", state="active", by=users["officer1"], reason="over")
    users["officer1"].groups.clear()
    request, created = services.set_trading_state(scope="global", state="active", by=users["officer2"], reason="x")
    assert created and request.proposed_by == users["officer2"] and _global(redis_client) == "halted"


def test_strategy_and_symbol_releases_and_the_setting_off_take_one_officer(active_v1, users, redis_client, settings):
    services.set_trading_state(scope="strategy", key="momentum", state="halted", by=users["agent"], reason="x")
    released, _ = services.set_trading_state(
        scope="strategy", key="momentum", state="active", by=users["officer1"], reason="fixed"
    )
    assert released.status == Status.ACTIVE
    _halt(users)
    settings.CIO_GLOBAL_RELEASE_NEEDS_SECOND_OFFICER = False
    released, _ = services.set_trading_state(scope="global", state="active", by=users["officer1"], reason="alone")
    assert released.status == Status.ACTIVE and _global(redis_client) == "active"


def test_rest_answers_202_for_a_request_and_201_for_the_confirmation(api, active_v1, redis_client):
    api["agent"].post("/api/trading-state", {"scope": "global", "state": "halted", "reason": "x"}, format="json")
    body = {"scope": "global", "state": "active", "reason": "calm"}
    request = api["officer1"].post("/api/trading-state", body, format="json")
    assert request.status_code == 202 and ok(request)["status"] == "proposed"
    assert api["officer1"].post("/api/trading-state", body, format="json").status_code == 202
    confirmed = api["officer2"].post("/api/trading-state", body, format="json")
    assert confirmed.status_code == 201 and ok(confirmed)["status"] == "active"
    assert PolicyVersion.objects.filter(status=Status.PROPOSED).count() == 0


@pytest.mark.e2e
def test_the_gate_stays_halted_until_the_second_officer_confirms(api, active_v1, gate_process, redis_client, stack):
    _wait(lambda: _gate_version(redis_client) == 1, 20)
    halted = ok(
        api["agent"].post("/api/trading-state", {"scope": "global", "state": "halted", "reason": "x"}, format="json")
    )
    _wait(lambda: _gate_version(redis_client) == halted["version"], 20)
    body = {"scope": "global", "state": "active", "reason": "over"}
    request = ok(api["officer1"].post("/api/trading-state", body, format="json"))
    assert decide_buy(stack.NATS_URL)["error"]["code"] == "TRADING_HALTED"
    assert _gate_version(redis_client) == halted["version"]  # nothing reached the gate
    ok(api["officer2"].post("/api/trading-state", body, format="json"))
    _wait(lambda: _gate_version(redis_client) == request["version"], 20)
    assert decide_buy(stack.NATS_URL)["data"]["decision"] == "APPROVED"
    assert orjson.loads(redis_client.get("gate:heartbeat:flow-gate"))["trading_state"] == "active"


def test_the_admin_kill_switch_lists_requests_and_a_second_officer_confirms(browser, active_v1, users, redis_client):
    _halt(users)
    url = "/admin/policies/policyversion/trading-state/"
    release = {"scope": "global", "key": "", "state": "active", "reason": "incident closed"}
    first = browser("officer1").post(url, release, follow=True).content.decode()
    assert "Release requested as v" in first and "takes a second risk officer" in first
    page = browser("officer2").get(url).content.decode()
    assert "Global release requests waiting for a second officer" in page and "by officer1" in page
    assert _global(redis_client) == "halted"
    done = browser("officer2").post(url, release, follow=True).content.decode()
    assert "Trading state set" in done and _global(redis_client) == "active"
    assert "waiting for a second officer" not in browser("officer2").get(url).content.decode()
