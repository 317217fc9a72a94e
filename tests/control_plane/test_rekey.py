"""Upgrading a policy stored before strategies were named by key: it no longer validates (gates refuse it, failing
closed), and `manage.py rekey_policy` writes it again, names changed and nothing else, as a signed, active version."""

import io
import json

import orjson
import pytest
from django.core.management import CommandError, call_command

from cio_kernel.policy.document import ACTIVE_POLICY_KEY
from cio_kernel.policy.signing import PolicyVerifier
from core.errors import PermissionDeniedError, SpecInvalidError
from policies import live, services
from policies.models import PolicyEvent, PolicyVersion, Status
from tests.control_plane.helpers import redis_policy


def _as_stored_before_keys(active: PolicyVersion, redis_client, strategies: dict) -> None:
    """The database row and Redis as an older control plane left them: strategies under their display names."""
    spec = {**active.spec, "strategies": strategies}
    PolicyVersion.objects.filter(pk=active.pk).update(spec=spec)  # (the model refuses edits; this is the past)
    document = orjson.loads(redis_client.get(ACTIVE_POLICY_KEY))
    redis_client.set(
        ACTIVE_POLICY_KEY, orjson.dumps({**document, "spec": {**document["spec"], **{"strategies": strategies}}})
    )


def test_an_old_policy_is_written_again_under_keys_with_the_same_limits_and_approval(active_v1, users, redis_client):
    old = {"Iceberg Order Detector": {"max_intents_per_second": 5}, "llm-swing": {"max_leverage": 3}}
    _as_stored_before_keys(active_v1, redis_client, old)
    assert live.read_live().document is None  # unreadable now: what a gate refuses too

    out = io.StringIO()
    call_command("rekey_policy", "--by", "officer2", stdout=out)

    row = PolicyVersion.objects.get(status=Status.ACTIVE)
    assert row.version == 2 and f"v{row.version} active" in out.getvalue()
    spec = row.parsed_spec
    assert spec.strategies["iceberg_order_detector"].max_intents_per_second == 5
    assert spec.strategies["llm_swing"].max_leverage == 3
    assert spec.global_rules == active_v1.parsed_spec.global_rules  # nothing else changed
    assert (row.decided_by, row.decided_at) == (active_v1.decided_by, active_v1.decided_at)  # its approval
    assert row.activated_by == users["officer2"]
    stored = redis_policy(redis_client)
    assert stored.version == 2 and stored.verified_by(PolicyVerifier([live.policy_signer().public_raw]))
    event = PolicyEvent.objects.get(policy=row, kind=PolicyEvent.Kind.ACTIVATED)
    assert event.detail["renamed"] == {"Iceberg Order Detector": "iceberg_order_detector", "llm-swing": "llm_swing"}
    assert PolicyEvent.objects.filter(policy=row, kind=PolicyEvent.Kind.ANOMALY).exists()  # the unreadable one

    again = io.StringIO()
    call_command("rekey_policy", "--by", "officer2", stdout=again)
    assert "nothing to do" in again.getvalue() and PolicyVersion.objects.count() == 2


def test_two_names_of_one_strategy_are_left_to_a_person_and_nothing_is_written(active_v1, redis_client):
    _as_stored_before_keys(
        active_v1, redis_client, {"llm-swing": {"max_leverage": 3}, "llm_swing": {"max_leverage": 5}}
    )
    before = redis_client.get(ACTIVE_POLICY_KEY)
    with pytest.raises(CommandError, match="one strategy"):
        call_command("rekey_policy", "--by", "officer1")
    assert redis_client.get(ACTIVE_POLICY_KEY) == before and PolicyVersion.objects.count() == 1


def test_only_a_risk_officer_may_re_key(active_v1, users, redis_client):
    _as_stored_before_keys(active_v1, redis_client, {"llm-swing": {}})
    with pytest.raises(PermissionDeniedError):
        services.rekey_strategies(by=users["agent"])
    with pytest.raises(SpecInvalidError):
        services.strategy_keys_of({"strategies": {"evil\u202espoof": {}}})
    assert json.loads(json.dumps(PolicyVersion.objects.get().spec))["strategies"] == {"llm-swing": {}}
