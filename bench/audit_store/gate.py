"""The gate's maximum sustained rate, from the gate benchmark's results of the same `make bench`: the ingest
rate's target is a ratio to it."""

import json
from pathlib import Path
from typing import Any

GATE_TARGET = 1.0


# -- the gate's figure from the same `make bench` -------------------------------------------------------------
def gate_max(results_path: Path, started: float, max_age_s: float) -> tuple[float | None, float | None, str, float]:
    """The gate's maximum sustained rate from the gate benchmark's results, if it wrote them in this `make bench`
    (the file's age; after an earlier audit run merged into it, the time that run saw). Also the first search
    step the gate did not sustain: the true maximum lies between the two."""
    try:
        results = json.loads(results_path.read_text())
        written = results_path.stat().st_mtime
    except (OSError, ValueError) as exc:
        return None, None, f"no gate results ({type(exc).__name__})", 0.0
    store = (results.get("audit") or {}).get("store") or {}
    written = store.get("gate_results_written_at") or written
    gate = results.get("max_sustained_gate") or {}
    rate = (results.get("maxima") or {}).get("gate") or gate.get("max_rate")
    if not rate:
        return None, None, "the gate benchmark recorded no maximum sustained rate", written
    age = started - written
    if age > max_age_s:
        return None, None, f"the gate's figure ({rate:,}/s) is {age / 3600:.1f} h old, not from this run", written
    failed = [step["offered_rate"] for step in gate.get("steps", []) if step.get("offered_rate", 0) > rate]
    note = " (a lower bound: the load generator was the limit)" if gate.get("bound_by_generator") else ""
    return float(rate), (float(min(failed)) if failed else None), note, written


def ingest_vs_gate(
    results: dict[str, Any], ingest: dict[str, Any] | None, results_path: Path, started: float, max_age_s: float
) -> float | None:
    """The ingest rate's ratio to the gate's maximum sustained rate, into `results`; returns the gate's rate."""
    rate, upper, note, written = gate_max(results_path, started, max_age_s)
    results["gate_max_rate"], results["gate_first_unsustained_rate"] = rate, upper
    results["gate_results_written_at"] = written or None
    if ingest and rate:
        results["ingest_vs_gate"] = round(ingest["rate"] / rate, 2)
        if upper:
            results["ingest_vs_gate_unsustained_step"] = round(ingest["rate"] / upper, 2)
            note += (
                f"; the gate's search failed at its next step, {upper:,.0f}/s, so its true maximum lies between: "
                f"against that step the ratio is {results['ingest_vs_gate_unsustained_step']:.2f}"
            )
        print(
            f"ingest / gate max sustained: {ingest['rate']:,}/s / {rate:,.0f}/s = {results['ingest_vs_gate']:.2f} "
            f"(target >= {GATE_TARGET}){note}",
            flush=True,
        )
    else:
        results["ingest_vs_gate"] = None
        print(f"ingest / gate max sustained: n/a ({note or 'no ingest figure'})", flush=True)
    return rate
