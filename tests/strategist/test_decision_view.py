"""The decisions the Strategist reasons from are the fleet's: a shadow gate's decisions (never promoted, nobody
answered) are in the audit store beside them, and in none of the Strategist's counts or rejection rates."""

from datetime import timedelta

from strategist.context import decision_view
from tests.audit.records import T0, chain_of


def test_the_strategists_decision_statistics_leave_shadow_decisions_out(db):
    from audit.store import get_store

    serving = chain_of(8)
    # A shadow gate rejecting many intents of the same strategies in the same window: a "rejection rate" that
    # nothing acted on.
    shadow = chain_of(16, gate_id="gate-s", start=8, shadow=True)
    get_store().insert_decisions(serving + shadow)
    view = decision_view(3600, T0 + timedelta(minutes=30))
    assert view is not None
    assert view.total == 8 and view.by_decision == {"APPROVED": 2, "REJECTED": 4, "RETRY_SAFE": 2}
    assert view.top_reasons == {"CONFIDENCE_TOO_LOW": 4, "POLICY_STALE": 2, "ORDER_NOTIONAL_EXCEEDED": 1}
    assert sum(sum(counts.values()) for counts in view.by_strategy.values()) == 8
