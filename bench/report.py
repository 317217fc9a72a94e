"""Render `.cio/bench/results.json` as the README's performance section (`python -m bench.report --readme`)."""

import argparse
import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _ms(us: float | None) -> str:
    return "n/a" if us is None else f"{us / 1000:.2f}"


def render(results: dict[str, Any]) -> str:
    m = results.get("machine", {})
    lines = [
        f"Machine: {m.get('cpu', '?')}, {m.get('cpus', '?')} cores, Python {m.get('python', '?')} "
        f"({m.get('date', '?')}); NATS, the responder under test and the load generator share the cores.",
        "",
        "| offered rate | CPU per message: echo / floor / gate | gate ÷ echo CPU | p99 ms: echo / gate "
        "| gate ÷ echo p99 | gate lost |",
        "|---|---|---|---|---|---|",
    ]
    for row in results.get("fixed_rates", []):
        echo, floor, gate = row["echo"], row["floor"], row["gate"]
        lines.append(
            f"| {row['rate']:,.0f}/s | {echo['responder_cpu_us']:.0f} / {floor['responder_cpu_us']:.0f} / "
            f"{gate['responder_cpu_us']:.0f} µs | {row['gate_cpu_ratio']:.2f}× | {_ms(echo['p99_us'])} / "
            f"{_ms(gate['p99_us'])} | {row['p99_ratio']:.2f}× | {gate['lost']} |"
        )
    maxima = results.get("maxima", {})
    two = results.get("max_sustained_two_gates") or {}
    echo_max = results.get("max_sustained_echo") or {}
    lines.append("")
    if maxima.get("echo"):
        bound = (
            " (the load generator's limit: the echo was not saturated)" if echo_max.get("bound_by_generator") else ""
        )
        lines.append(
            f"- Maximum sustained rate (zero lost, zero shed, p99 under the 200 ms budget, 3 s steps): gate "
            f"**{maxima.get('gate', 0):,}/s**, echo {maxima['echo']:,}/s{bound}, floor {maxima.get('floor', 0):,}/s; "
            f"gate ÷ echo **{maxima.get('gate', 0) / maxima['echo']:.2f}**."
        )
    if two:
        lines.append(
            f"- Two gates in the queue group: {two.get('max_rate', 0):,}/s (one gate: {maxima.get('gate', 0):,}/s)."
        )
    over = results.get("overload")
    if over:
        lines.append(
            f"- Overload, {over['offered_rate']:,.0f}/s offered (twice the gate's maximum) for "
            f"{over['sent'] / over['offered_rate']:.0f} s: {over['answered_pct']}% answered ({over['lost']} lost), "
            f"{over['shed_pct']}% shed as `OVERLOADED` without being parsed, {over['approved_late']} approvals after "
            f"the budget; once the load dropped to 500/s, p99 was {_ms(over['recovery_p99_first_second_us'])} ms in "
            f"the first second and {_ms(over['recovery_p99_second_second_us'])} ms in the next (normal at 500/s: "
            f"{_ms(over.get('normal_p99_us'))} ms)."
        )
    pickup = results.get("policy_pickup")
    if pickup:
        lines.append(
            f"- Policy pickup ({pickup['activations']} activations: Redis check-and-set + `cio.strategist.update`, "
            f"then the first decision under the new version): p50 {pickup['p50_ms']} ms, p99 {pickup['p99_ms']} ms."
        )
    large = results.get("large_policy")
    if large:
        lines.append(
            f"- Largest accepted policy ({large['document_bytes'] / 1024:,.0f} KiB, 3,000 symbols) activated once a "
            f"second during 1,000 intents/s: p50 {_ms(large['p50_us'])} ms, p99 {_ms(large['p99_us'])} ms, "
            f"{large['lost']} lost."
        )
    audit = results.get("audit")
    if audit and "events" in audit:
        lines.append(
            f"- Audit: {audit['events']:,} events in `CIO_AUDIT` for {audit['requests']:,} requests to the gates "
            f"({'exactly one each' if audit['exactly_once'] else 'MISMATCH'})."
        )
    cost = results.get("decision_cost")
    if cost:
        lines.append(
            f"- In process, per intent: `evaluate()` {cost['evaluate_us']} µs; the whole pipeline (parse, validate, "
            f"decide, envelope, signal, audit event) {cost['pipeline_us']} µs, {cost['pipeline_traced_us']} µs with "
            f"a recorded span (what exporting every trace adds); shedding an intent {cost['shed_us']} µs."
        )
    for key, backend in (("store", "SQLite"), ("store_postgresql", "PostgreSQL")):
        store = (audit or {}).get(key)
        if store:
            lines += ["", *render_audit_store(store, backend)]
    strategist = results.get("strategist")
    if strategist:
        lines += ["", *render_strategist(strategist)]
    failed = results.get("failed_steps") or {}
    if failed:
        lines.append(f"- Steps that failed in this run: {', '.join(f'`{k}`' for k in failed)}.")
    return "\n".join(lines)


def _ratio(value: float | None, target: str) -> str:
    return "n/a" if value is None else f"**{value:.2f}** (target {target})"


def render_audit_store(store: dict[str, Any], backend: str = "SQLite") -> list[str]:
    """`bench.audit_store`: the Django backend on SQLite or PostgreSQL, fed by the real AuditIngest over JetStream."""
    empty, bare = store.get("ingest_empty") or {}, store.get("bare_bulk_create") or {}
    small, large = store.get("ingest_at_small") or {}, store.get("ingest_at_large") or {}
    lines = [
        f"Audit store (Django backend on {backend}, `AuditIngest` draining `CIO_AUDIT`, batches of "
        f"{empty.get('batch_size', small.get('batch_size', '?'))}):",
        "",
        "| measurement | events/s | CPU per event |",
        "|---|---|---|",
    ]
    rows = [
        ("ingest into an empty database", empty),
        ("bare `bulk_create` of the same rows (baseline)", bare),
        ("raw `executemany` of the same rows", store.get("bare_executemany") or {}),
        (f"ingest with {small.get('stored_before', 0):,} stored", small),
        (f"ingest with {large.get('stored_before', 0):,} stored", large),
    ]
    for label, row in rows:
        if row:
            lines.append(f"| {label} | {row['rate']:,} | {row['cpu_us_per_event']} µs |")
    lines.append("")
    lines.append(
        f"- Ingest ÷ bare insert {store.get('ingest_vs_bare', 'n/a')}; ingest ÷ the gate's maximum sustained rate "
        f"{_ratio(store.get('ingest_vs_gate'), '≥ 1.0')} ({store.get('ingest_at_large_vs_gate', 'n/a')} with the "
        f"large store); ingest with the large store ÷ with the small one "
        f"{_ratio(store.get('scale_ratio'), '≥ 0.8')}, in CPU per event {store.get('scale_cpu_ratio', 'n/a')}."
    )
    pre = store.get("preload_large")
    if pre:
        lines.append(
            f"- Preload of {pre['records']:,} records ({'`COPY`' if backend == 'PostgreSQL' else 'raw `executemany`'}):"
            f" {pre['seconds']:.0f} s; the database then "
            f"held {pre['stored']:,} decisions and {pre['reasons']:,} reason rows in {pre['db_mb']:,.0f} MB."
        )
    storage = store.get("storage")
    if storage and storage.get("ratio") is not None:
        biggest = ", ".join(f"{name} {size:,}" for name, size in list(storage["by_object"].items())[:4])
        lines.append(
            f"- Storage at {storage['decisions']:,} decisions: {storage['bytes_per_decision']:,} bytes a decision, "
            f"the decisions and their reasons with every index counted, for an event of "
            f"{storage['event_bytes']:,} bytes: **{storage['ratio']:.2f}×** (target ≤ 2); largest: {biggest} bytes."
        )
    query = store.get("query")
    if query:
        lines.append(
            f"- Decisions list at {query.get('stored', 0):,} records, {query['queries']} `find_decisions` calls: p50 "
            f"{query['p50_ms']} ms, p99 **{query['p99_ms']} ms** (target < 50 ms); slowest shapes: "
            + ", ".join(
                f"{name} {shape['p99_ms']} ms"
                for name, shape in sorted(query["shapes"].items(), key=lambda kv: -kv[1]["p99_ms"])[:3]
            )
            + "."
        )
    return lines


def render_strategist(r: dict[str, Any]) -> list[str]:
    """`bench.strategist`: one reasoning cycle with each brain, against a bare proposal."""
    seed = r.get("seed") or {}
    lines = [
        f"Strategist (a whole cycle: context, brain, validation, proposal, thought; {seed.get('decisions', 0):,} "
        f"decisions in the statistics window, {seed.get('symbols', '?')} symbols, {seed.get('incidents', '?')} "
        "incidents; the LLM brain against a local server that answers at once):",
        "",
        "| measurement | wall p50 / p99 | CPU per cycle | ÷ bare propose (wall / CPU) |",
        "|---|---|---|---|",
    ]
    for name, label in (
        ("bare_propose", "bare `services.propose` (baseline)"),
        ("stats", "decision statistics alone"),
        ("context", "context build alone"),
        ("rule_cycle", "cycle, rule brain"),
        ("llm_cycle", "cycle, LLM brain"),
        ("stats_large", "decision statistics alone, large window"),
        ("context_large", "context build, large window"),
        ("rule_cycle_large", "cycle, rule brain, large window"),
    ):
        row = r.get(name)
        if row:
            ratio = f"{row['p50_vs_propose']}× / {row['cpu_vs_propose']}×" if "p50_vs_propose" in row else "-"
            lines.append(f"| {label} | {row['p50_ms']} / {row['p99_ms']} ms | {row['cpu_ms']} ms | {ratio} |")
    large, preload = r.get("large_window") or {}, r.get("preload_window") or {}
    if "rule_cycle_p50" in large:
        small_n, large_n = large["decisions"]
        lines += [
            "",
            f"- Large window: {large_n:,} decisions in the statistics window (preloaded straight into the decisions "
            f"and their per-minute rollups in {preload.get('seconds', '?')} s) ÷ {small_n:,}: decision statistics "
            f"**{large.get('stats_p50')}×** wall ({large.get('stats_cpu')}× CPU), context build "
            f"**{large.get('context_p50')}×** wall ({large.get('context_cpu')}× CPU), rule-brain cycle "
            f"**{large['rule_cycle_p50']}×** wall ({large['rule_cycle_cpu']}× CPU) (target ≤ 1.2×).",
        ]
    tokens = r.get("tokens")
    if tokens:
        lines += [
            "",
            f"- Tokens per LLM cycle on this context: prompt {tokens['system_chars'] + tokens['context_chars']:,} "
            f"characters ≈ **{tokens['prompt_tokens_est']:,} tokens** (instructions {tokens['system_chars']:,}, "
            f"context {tokens['context_chars']:,}; about four characters a token), answer ≈ "
            f"{tokens['completion_tokens_est']} tokens for a two-field proposal; a reask doubles the prompt.",
        ]
    failed = r.get("failed_steps") or {}
    if failed:
        lines.append(f"- Strategist steps that failed in this run: {', '.join(f'`{k}`' for k in failed)}.")
    return lines


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
