"""What the control plane does when Redis holds something it did not write, when Redis is away, when the
database was restored, and when officers and agents act at the same time (SQLite and PostgreSQL alike)."""

import threading

import orjson
import pytest
from django.db import connection

from cio_kernel.policy.document import ACTIVE_POLICY_KEY
from cio_kernel.policy.signing import PolicyVerifier
from cio_kernel.policy.store import build_document
from core import errors
from policies import services
from policies.models import PolicyEvent, PolicyVersion, Status
from tests.control_plane.helpers import _wait, gate_version, redis_policy
from tests.factories import TEST_SIGNER, make_spec

TRUST = PolicyVerifier([TEST_SIGNER.public_raw])


def _spec(**rules):
    return make_spec(**rules).model_dump(mode="json", by_alias=True)


def _activate(spec, users):
    policy = services.propose(spec=spec, by=users["officer1"], rationale="test")
    services.approve(policy, by=users["officer2"])
    return services.activate(policy, by=users["officer2"])


def test_a_forged_document_in_redis_cannot_lock_out_the_kill_switch(active_v1, users, redis_client):
    forged = build_document(make_spec(min_confidence=0.0), 10**15, "attacker")  # the project's own code, no key
    redis_client.set(ACTIVE_POLICY_KEY, forged.model_dump_json())
    halted, created = services.set_trading_state(
        scope="global", state="halted", by=users["officer1"], reason="forged policy found"
    )
    assert created and halted.version == 2
    stored = redis_policy(redis_client)
    assert stored.version == 2 and stored.spec.global_rules.trading_state == "halted"
    assert stored.spec.global_rules.min_confidence == 0.5  # built on v1, not on the forgery
    assert stored.verified_by(TRUST)
    anomaly = PolicyEvent.objects.get(kind=PolicyEvent.Kind.ANOMALY)
    assert "not signed by this control plane" in anomaly.reason


def test_versions_never_go_back_after_a_database_restore(active_v1, users, redis_client):
    v2 = _activate(_spec(min_confidence=0.6), users)
    assert redis_policy(redis_client).version == 2
    # The database is restored from a backup taken before v2: Redis (and every gate) still run v2.
    PolicyEvent.objects.filter(policy=v2).delete()
    v2.delete()
    PolicyVersion.objects.filter(pk=active_v1.pk).update(status=Status.ACTIVE)
    proposal = services.propose(spec=_spec(min_confidence=0.65), by=users["officer1"])
    assert proposal.version == 3  # never 2 again: that number is v2 in Redis
    services.approve(proposal, by=users["officer2"])
    services.activate(proposal, by=users["officer2"])
    adopted = PolicyVersion.objects.get(version=2)  # the database learned what Redis ran
    assert adopted.status == Status.SUPERSEDED and adopted.spec["global"]["min_confidence"] == 0.6
    assert PolicyEvent.objects.filter(kind=PolicyEvent.Kind.RECONCILED, policy=adopted).exists()
    assert redis_policy(redis_client).version == 3


def test_asking_for_the_state_a_scope_already_has_creates_no_version(active_v1, users, redis_client):
    before = PolicyVersion.objects.count()
    policy, created = services.set_trading_state(scope="global", state="active", by=users["officer1"], reason="x")
    assert not created and policy.version == 1 and PolicyVersion.objects.count() == before
    services.set_trading_state(scope="symbol", key="DOGEUSDT", state="halted", by=users["agent"], reason="y")
    again, created = services.set_trading_state(
        scope="symbol", key="DOGEUSDT", state="halted", by=users["agent"], reason="y"
    )
    assert not created and again.version == 2 and redis_policy(redis_client).version == 2


def test_an_approved_version_overtaken_by_a_kill_switch_cannot_be_activated(active_v1, users, redis_client):
    change = services.propose(spec=_spec(min_confidence=0.4), by=users["officer1"])
    services.approve(change, by=users["officer2"])
    halted, _ = services.set_trading_state(scope="global", state="halted", by=users["agent"], reason="incident")
    with pytest.raises(errors.InvalidTransitionError, match="propose the change again"):
        services.activate(change, by=users["officer2"])
    assert redis_policy(redis_client).version == halted.version  # the halt was not quietly undone
    assert PolicyVersion.objects.get(pk=change.pk).status == Status.APPROVED


def test_a_rollback_that_cannot_reach_redis_fails_and_is_recorded(active_v1, users, redis_proc):
    _activate(_spec(min_confidence=0.7), users)
    redis_proc.stop()
    with pytest.raises(errors.ActivationFailedError, match="Redis is unreachable"):
        services.rollback(active_v1, by=users["officer1"], reason="v2 too strict")
    failure = PolicyEvent.objects.get(kind=PolicyEvent.Kind.ACTIVATION_FAILED)
    assert failure.detail["operation"] == "rollback" and failure.actor == users["officer1"]
    assert PolicyVersion.objects.get(status=Status.ACTIVE).version == 2  # nothing changed


def test_a_halt_with_redis_down_is_delivered_by_notice_and_written_when_redis_returns(
    active_v1, users, redis_proc, redis_url
):
    redis_proc.stop()
    halted, created = services.set_trading_state(
        scope="global", state="halted", by=users["agent"], reason="Redis is down and something is wrong"
    )
    assert created and halted.pending_state == {"scope": "global", "key": "", "state": "halted"}
    event = PolicyEvent.objects.get(kind=PolicyEvent.Kind.TRADING_STATE, policy=halted)
    assert event.detail["persisted"] is False
    with pytest.raises(errors.ActivationFailedError, match="releasing global needs it"):
        services.set_trading_state(scope="global", state="active", by=users["officer1"], reason="too early")
    redis_proc.start()  # back, and empty
    done = services.reconcile_policies()
    assert [p.version for p in done] == [halted.version]
    import redis as sync_redis

    client = sync_redis.Redis.from_url(redis_url)
    stored = orjson.loads(client.get(ACTIVE_POLICY_KEY))
    client.close()
    assert stored["version"] == halted.version and stored["spec"]["global"]["trading_state"] == "halted"
    row = PolicyVersion.objects.get(pk=halted.pk)
    assert row.status == Status.ACTIVE and row.pending_state is None


@pytest.mark.django_db(transaction=True)
def test_activations_halts_and_tightenings_at_once_leave_the_database_redis_and_the_policy_agreeing(
    stack, users, redis_client, gate_process
):
    _activate(_spec(max_order_notional_usd=20_000.0), users)
    stricter = services.propose(spec=_spec(max_order_notional_usd=5_000.0), by=users["officer1"])
    services.approve(stricter, by=users["officer2"])
    acts = [
        ("officer2", lambda: services.activate(stricter, by=users["officer2"])),
        ("agent", lambda: services.set_trading_state(scope="global", state="halted", by=users["agent"], reason="a")),
        (
            "agent",
            lambda: services.set_trading_state(
                scope="symbol", key="DOGEUSDT", state="halted", by=users["agent"], reason="b"
            ),
        ),
        (
            "agent",
            lambda: services.set_trading_state(
                scope="strategy", key="llm-swing", state="reducing", by=users["agent"], reason="c"
            ),
        ),
        (
            "officer1",
            lambda: services.set_trading_state(
                scope="symbol", key="ETHUSDT", state="reducing", by=users["officer1"], reason="d"
            ),
        ),
        ("officer1", lambda: services.propose(spec=_spec(min_confidence=0.3), by=users["officer1"])),
    ]
    barrier = threading.Barrier(len(acts))
    outcomes: dict[int, str] = {}

    def run(index, act) -> None:
        barrier.wait()
        try:
            act()
            outcomes[index] = "done"
        except errors.InvalidTransitionError:
            outcomes[index] = "refused"
        except Exception as exc:  # any other answer (a 500) fails the test
            outcomes[index] = f"error: {exc!r}"
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, act)) for i, (_, act) in enumerate(acts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(not outcome.startswith("error") for outcome in outcomes.values()), outcomes
    assert len(outcomes) == len(acts)
    stored = redis_policy(redis_client)
    assert stored.verified_by(TRUST)
    active = PolicyVersion.objects.get(status=Status.ACTIVE)
    assert (active.version, active.checksum) == (stored.version, stored.checksum)  # they agree
    spec = stored.spec
    assert spec.global_rules.trading_state == "halted"  # every tightening survives the others
    assert spec.symbols["DOGEUSDT"].trading_state == "halted" and spec.symbols["ETHUSDT"].trading_state == "reducing"
    assert spec.strategies["llm_swing"].trading_state == "reducing"
    _wait(lambda: gate_version(redis_client) == stored.version, 20)  # the gate runs that very version (via the notices)
    if outcomes[0] == "done":  # the stricter cap, once live, is never loosened by a version derived later
        assert spec.global_rules.max_order_notional_usd == 5_000.0
    else:
        assert spec.global_rules.max_order_notional_usd == 20_000.0
