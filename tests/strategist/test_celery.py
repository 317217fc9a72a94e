"""Cycles through real Celery: beat's database schedule starts them, a worker runs them, a trigger from the
listener reaches the worker through the broker, and a worker killed mid-cycle never blocks the Strategist for
longer than the lock's time to live."""

import asyncio
import json
import time
from datetime import UTC, datetime

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from core.tracing import SERVICE_NAME, STRATEGIST_CYCLE
from deploy.fake_openai import Step
from strategist import cycle as cycles
from strategist import cycle_requests
from strategist.inputs import RegimeEntry
from strategist.lock import LOCK_KEY, CycleBusyError
from strategist.models import Cycle, Outcome
from strategist.triggers import MANUAL, REGIME_SHIFT, SCHEDULE, Trigger, regime_shift
from tests.audit.ingest_helpers import wait_for
from tests.celery_processes import celery_env, start_beat, start_worker
from tests.strategist.helpers import regime

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


@pytest.fixture
def env(strategist_stack, redis_url, tmp_path, broker):
    return celery_env(strategist_stack, redis_url, tmp_path)


@pytest.fixture
def worker_processes():
    started = []
    yield started
    for process in started:
        process.stop()


def test_beat_schedules_cycles_that_a_worker_runs(active_policy, redis_client, env, tmp_path, worker_processes):
    regime(redis_client, "BTCUSDT", 0.07)
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(  # the row the migration made, when this test runs first
        name="strategist: reasoning cycle",
        defaults={
            "task": "strategist.run_cycle",
            "interval": every_second,
            "kwargs": json.dumps({"trigger": SCHEDULE}),
        },
    )
    worker_processes.append(start_worker(env, tmp_path / "worker.log"))
    worker_processes.append(start_beat(env, tmp_path / "beat.log", tmp_path))

    wait_for(lambda: Cycle.objects.filter(trigger=SCHEDULE).count() >= 2, 60, "two scheduled cycles")
    first, second = Cycle.objects.filter(trigger=SCHEDULE).order_by("started_at")[:2]
    assert first.outcome == Outcome.PROPOSED and first.brain == "rules"
    assert second.outcome == Outcome.DUPLICATE and second.proposal_id == first.proposal_id
    assert first.thought_stored_at is not None


def test_a_trigger_reaches_the_worker_through_the_broker_and_its_cycle_is_traced(
    active_policy, redis_client, env, tmp_path, worker_processes, otlp_receiver
):
    from strategist.listener import celery_enqueue

    traced = {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "50"}
    worker_processes.append(start_worker(traced, tmp_path / "worker.log"))
    regime(redis_client, "BTCUSDT", 0.2)
    shift = regime_shift("BTCUSDT", None, RegimeEntry(ts=datetime.now(UTC), volatility=0.2))
    asyncio.run(celery_enqueue()(shift))  # records the request row, then sends a task naming only it

    cycle = wait_for(lambda: Cycle.objects.filter(trigger=REGIME_SHIFT).first(), 60, "the triggered cycle")
    assert cycle.trigger_detail == {"symbol": "BTCUSDT", "to_band": "extreme", "volatility": 0.2}
    assert cycle.request is not None and cycle.request.via == "listener" and cycle.request.consumed_at is not None
    assert cycle.thought["inputs_summary"]["trigger_verified"] is True
    assert cycle.proposal.parsed_spec.symbols["BTCUSDT"].trading_state == "reducing"
    # The worker's span of the cycle, in the trace its thought names (docs/tracing.md).
    [span] = wait_for(lambda: otlp_receiver.named(STRATEGIST_CYCLE, SERVICE_NAME), 20, "the cycle's span")
    assert span.trace_id == cycle.thought["trace_id"] and span.parent_span_id == ""
    assert span.attributes == {"cio.trigger": REGIME_SHIFT, "cio.cycle_id": cycle.cycle_id, "cio.outcome": "proposed"}


def test_a_worker_killed_mid_cycle_holds_the_lock_only_until_it_lapses(
    active_policy, redis_client, strategist_stack, redis_url, tmp_path, fake_llm, worker_processes, broker, users
):
    fake_llm.then(Step(content="{}", delay_s=60))  # the LLM never answers in time: the cycle is stuck in it
    env = celery_env(
        strategist_stack,
        redis_url,
        tmp_path,
        CIO_LLM_BASE_URL=fake_llm.base_url,
        CIO_LLM_TIMEOUT_S="60",
        CIO_STRATEGIST_LOCK_TTL_S="2",
    )
    worker = start_worker(env, tmp_path / "worker.log")
    worker_processes.append(worker)
    from strategist.tasks import run_cycle

    asked = cycle_requests.record(MANUAL, {}, via=cycle_requests.ADMIN, by=users["officer1"])
    run_cycle.apply_async(kwargs={"trigger": MANUAL, "request": asked})
    wait_for(lambda: fake_llm.requests, 60, "the worker's cycle to reach the LLM")
    holder = redis_client.get(LOCK_KEY)
    assert holder is not None
    # The cycle outlives the lock's 2 s time to live: the worker keeps renewing it (watched for three of them),
    # each renewal with a fresh token (a copied one must stop counting within one time to live).
    held_since, seen = time.monotonic(), {holder}

    def still_held_for_6_s() -> bool:
        value = redis_client.get(LOCK_KEY)
        assert value is not None, "the lock lapsed while its cycle ran"
        seen.add(value)
        return time.monotonic() - held_since > 6

    wait_for(still_held_for_6_s, 10, "6 s to pass")
    assert len(seen) > 1
    with pytest.raises(CycleBusyError):
        cycles.run_cycle(Trigger(SCHEDULE, {}), client=redis_client, use_env_llm=False)

    worker.kill()
    ttl_ms = redis_client.pttl(LOCK_KEY)
    assert 0 < ttl_ms <= 2000  # nobody renews it any more: it lapses within its time to live
    wait_for(lambda: redis_client.get(LOCK_KEY) is None, 10, "the dead worker's lock to lapse")
    cycle = cycles.run_cycle(Trigger(SCHEDULE, {}), client=redis_client, use_env_llm=False)
    assert cycle is not None and cycle.brain == "rules"
    assert not Cycle.objects.filter(trigger="manual").exists()  # the killed cycle left nothing half-written
