"""Render `.cio/bench/results.json` as the README's performance section (`python -m bench.report --readme`)."""

import argparse
import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def render(results: dict[str, Any]) -> str:
    lines = [
        "| offered rate | echo p50 / p99 / p99.9 (ms) | gate p50 / p99 / p99.9 (ms) | gate p99 ÷ echo p99 "
        "| gate lost / duplicated | gate CPU per intent |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["fixed_rates"]:
        echo, gate = row["echo"], row["gate"]
        lines.append(
            f"| {row['rate']:,.0f}/s | {_ms(echo['p50_us'])} / {_ms(echo['p99_us'])} / {_ms(echo['p999_us'])} "
            f"| {_ms(gate['p50_us'])} / {_ms(gate['p99_us'])} / {_ms(gate['p999_us'])} | {row['p99_ratio']:.2f}× "
            f"| {gate['lost']} / {gate['duplicates']} | {row['gate_cpu_us_per_intent']:.0f} µs |"
        )
    best = results["max_sustained"]
    audit = results["audit"]
    cost = results["decision_cost"]
    pickup = results.get("policy_pickup")
    lines += [
        "",
        *(
            [
                f"- Policy pickup ({pickup['activations']} activations: Redis check-and-set + `cio.strategist.update`, "
                f"then the first decision made under the new version): p50 {pickup['p50_ms']} ms, p99 "
                f"{pickup['p99_ms']} ms, max {pickup['max_ms']} ms."
            ]
            if pickup
            else []
        ),
        f"- Maximum sustained rate (every reply received, none duplicated, p99 under the 200 ms budget; steps of "
        f"3 s): gate **{best['gate']:,}/s**, echo baseline {best['echo']:,}/s"
        + (" (the highest step tried)" if best["echo"] == max(s["offered_rate"] for s in best["echo_steps"]) else "")
        + f", ratio {best['ratio']:.2f}.",
        f"- Audit: {audit['audit_events']:,} events in `CIO_AUDIT` for {audit['intents_sent']:,} intents sent "
        f"({'exactly one each' if audit['exactly_once'] else 'MISMATCH'}).",
        f"- Decision cost in process: `evaluate()` {cost['evaluate_us']:.1f} µs per intent; the whole pipeline "
        f"(parse, validate, decide, span, envelope, signal and audit serialisation, redaction) "
        f"{cost['pipeline_us']:.1f} µs.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", default=str(ROOT / ".cio" / "bench" / "results.json"))
    parser.add_argument("--readme", action="store_true", help="write the section into README.md")
    args = parser.parse_args()
    table = render(json.loads(Path(args.results).read_text()))
    if not args.readme:
        print(table)
        return
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = re.sub(
        r"(<!-- bench:start -->\n).*?(\n<!-- bench:end -->)",
        lambda m: m.group(1) + table + m.group(2),
        text,
        flags=re.DOTALL,
    )
    readme.write_text(new)
    print("README.md updated")


if __name__ == "__main__":
    main()
