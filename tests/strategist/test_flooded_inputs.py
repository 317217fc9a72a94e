"""The `strategist` Redis identity floods the regime hash with planted entries: each is refused, the cycle still
runs, its thought lists a bounded number of them (and counts the rest), and it is not approved unseen."""

import orjson
import pytest

from strategist.inputs import MAX_PROBLEMS, REGIME_KEY
from strategist.models import Outcome
from tests.strategist.helpers import run_scheduled_cycle

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_flood_of_planted_regime_entries_is_refused_without_bloating_the_thought(live_policy, strategist, attacker):
    planted = {f"SYM{n}USDT": orjson.dumps({"entry": {"volatility": 0.5}, "seal": "0"}) for n in range(2000)}
    planted.update({f"not a symbol {n}": b"x" for n in range(500)})
    attacker.hset(REGIME_KEY, mapping=planted)
    cycle = run_scheduled_cycle(strategist)
    assert cycle is not None and cycle.outcome != Outcome.AUTO_APPROVED
    problems = cycle.thought["inputs_summary"]["input_problems"]
    assert len(problems) == MAX_PROBLEMS
    assert problems[-1] == f"... and {2500 - MAX_PROBLEMS + 1} more (not listed)"
    assert cycle.thought["inputs_summary"]["regime"] == {}
