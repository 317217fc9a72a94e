"""Loaded by `make mutation` only (`[tool.mutmut]` in pyproject.toml): runs a mutant's tests fastest first.

mutmut hands pytest the tests that reach the mutated function as a set, so their order is arbitrary, and it stops
at the first failure (`-x`). A mutant a unit test kills in milliseconds then often waits a minute behind the
property tests first. Ordering by the durations mutmut measured in its clean run (mutants/mutmut-stats.json, the
working directory of its test runs) lets the cheap killers go first; a surviving mutant costs the same either way.
"""

import json
import math
from pathlib import Path

import pytest

STATS = Path("mutmut-stats.json")


def _durations() -> dict[str, float]:
    try:
        return json.loads(STATS.read_text())["duration_by_test"]
    except (OSError, ValueError, KeyError):
        return {}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    durations = _durations()
    # Unmeasured tests go last: a test the clean run did not time may be slow.
    items.sort(key=lambda item: durations.get(item.nodeid, math.inf))
