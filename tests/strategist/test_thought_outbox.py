"""Nothing lost: a cycle whose thought cannot reach the audit store (MongoDB stopped) still completes, keeps the
thought in its own row, and the flush task writes it once the store is back: once, however often it runs."""

import pytest

from audit.records import Thought
from audit.store.mongo import MongoAuditStore
from strategist import cycle as cycles
from strategist.models import Cycle, Outcome
from strategist.triggers import SCHEDULE, Trigger
from tests.plugins.mongo import MONGO_DB
from tests.strategist.helpers import regime

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mongo_store(persistent_mongo_proc, monkeypatch):
    import audit.store

    url = f"mongodb://127.0.0.1:{persistent_mongo_proc.port}/{MONGO_DB}?directConnection=true"
    store = MongoAuditStore.from_uri(url, timeout_s=1.0)
    store.ensure_schema()
    monkeypatch.setattr(audit.store, "_store", store)
    yield store, persistent_mongo_proc
    store.close()


def test_a_thought_mongodb_could_not_take_is_written_when_it_returns(active_policy, redis_client, mongo_store):
    store, server = mongo_store
    regime(redis_client, "BTCUSDT", 0.07)
    server.stop()

    cycle = cycles.run_cycle(Trigger(SCHEDULE, {}), client=redis_client, use_env_llm=False)
    assert cycle.outcome == Outcome.PROPOSED and cycle.proposal.thought_id == cycle.cycle_id
    assert Cycle.objects.get(pk=cycle.pk).thought_stored_at is None
    assert cycles.flush_thoughts() == 0  # still away: nothing written, still pending

    server.start(timeout_s=30)
    assert cycles.flush_thoughts() == 1
    assert cycles.flush_thoughts() == 0
    stored = store.get_thought(cycle.cycle_id)
    assert isinstance(stored, Thought) and stored.proposed_version == cycle.proposal.version
    assert stored.rationale == cycle.rationale and stored.trace_id == cycle.trace_id
    assert Cycle.objects.get(pk=cycle.pk).thought_stored_at is not None
    assert store._thoughts.count_documents({}) == 1
