"""How a shadow gate's decisions compare with what the serving CIO actually promoted (docs/deploy.md, "Shadow mode").

The two sides meet on one key per intent: the strategy's key and the producer's intent id (`Intent.intent_id`: the
first of `signal_id`, `intent_id`, `id`, `client_order_id`), or, for an intent without an id, the strategy, symbol,
action and the producer's own timestamp (which the promoted signal keeps). Both sides are read through the same
`Intent` model, so a respelt strategy id or symbol, or another spelling of the same time, still meets. Intents with
neither an id nor a timestamp cannot be matched: they are counted apart, never guessed at.

A shadow gate can decide one intent more than once (the strategy retried a RETRY_SAFE): the intent counts as
approved by the shadow when any of its decisions was, else as rejected when any was.

`build_report` is the one way to a report: `manage.py shadow_report` prints it, the admin's shadow report page
(`audit.admin`) shows it. When the promotions cannot be read there is no report at all
(`PromotionsUnreadableError`): without them every shadow approval would look like a disagreement, and every
rejection like an agreement.
"""

import asyncio
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from audit.records import DecisionRecord
from audit.store import decision_log
from audit.store.decisions import MAX_PAGE, DecisionQuery
from cio_kernel.contracts.intent import Intent
from cio_kernel.shadow import SHADOW_SIGNAL_STREAM
from core.nats_connect import connect_once

IntentKey = tuple[str, ...]
_FETCH = 500

# The outcome of one intent, worst first: what the new gates would let through that the serving CIO stopped; what
# they would stop that it let through; what they could not decide that it promoted; what it promoted that the
# shadow never saw (a shadow gate down, or not hearing a subject). Then the agreements.
SHADOW_ONLY = "shadow_promotes_serving_did_not"
SERVING_ONLY = "serving_promoted_shadow_rejects"
SERVING_ONLY_UNDECIDED = "serving_promoted_shadow_retry_safe"
UNSEEN = "serving_promoted_shadow_never_saw"
BOTH = "both_promote"
NEITHER = "neither_promotes"
OUTCOMES = (SHADOW_ONLY, SERVING_ONLY, SERVING_ONLY_UNDECIDED, UNSEEN, BOTH, NEITHER)
DISAGREEMENTS = OUTCOMES[:4]
_LABELS = {
    SHADOW_ONLY: "shadow would promote, the serving CIO did not (new gates looser: review first)",
    SERVING_ONLY: "the serving CIO promoted, shadow rejects (new gates would stop these)",
    SERVING_ONLY_UNDECIDED: "the serving CIO promoted, shadow could not decide (RETRY_SAFE)",
    UNSEEN: "the serving CIO promoted, no shadow decision at all",
    BOTH: "both promote",
    NEITHER: "neither promotes",
}
_RANK = {"APPROVED": 2, "REJECTED": 1, "RETRY_SAFE": 0}


def intent_key(
    key: str, intent_id: str | None, symbol: str | None, action: str | None, ts: datetime | None
) -> IntentKey | None:
    if intent_id:
        return ("id", key, intent_id)
    if symbol and action and ts is not None:
        return ("at", key, symbol, action, f"{ts.timestamp():.3f}")
    return None


@dataclass(frozen=True, slots=True)
class Promoted:
    """One signal the serving CIO published, read as the intent it carries."""

    key: IntentKey | None
    ts: datetime  # when the stream stored it
    strategy_key: str | None = None
    symbol: str | None = None
    action: str | None = None
    intent_id: str | None = None


def promoted_of(payload: bytes, stored_at: datetime) -> Promoted:
    """A recorded signal; one that is not an intent (the contract changed?) has no key and is counted apart."""
    try:
        intent = Intent.model_validate_json(payload)
    except ValidationError:
        return Promoted(None, stored_at)
    key = intent.strategy_key
    return Promoted(
        intent_key(key, intent.intent_id, intent.symbol, intent.action, intent.timestamp),
        stored_at,
        key,
        intent.symbol,
        intent.action,
        intent.intent_id,
    )


@dataclass(slots=True)
class _Shadowed:
    record: DecisionRecord
    decisions: int = 1


def _shadow_key(record: DecisionRecord) -> IntentKey | None:
    if not record.strategy_key:
        return None
    intent: dict[str, Any] = record.event_dict().get("intent") or {}
    ts = None
    raw_ts = intent.get("timestamp")
    if isinstance(raw_ts, str):
        try:
            ts = datetime.fromisoformat(raw_ts)
        except ValueError:
            ts = None
    return intent_key(record.strategy_key, record.intent_id, record.symbol, record.action, ts)


@dataclass(frozen=True, slots=True)
class Example:
    outcome: str
    decision_id: str | None
    strategy_key: str | None
    symbol: str | None
    action: str | None
    intent_id: str | None
    reason_codes: tuple[str, ...]


@dataclass
class ShadowReport:
    since: datetime
    until: datetime
    shadow_decisions: int = 0
    promoted_signals: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    # The shadow's reason codes on intents the serving CIO promoted: why the new gates would stop them.
    blocking_reasons: Counter[str] = field(default_factory=Counter)
    by_strategy: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    unmatched_decisions: int = 0  # shadow decisions with no key (a VAL_ERR without a strategy, no id nor timestamp)
    unreadable_signals: int = 0  # recorded signals that are not intents, or carry no key
    examples: list[Example] = field(default_factory=list)

    def outcome_counts(self) -> list[tuple[str, str, int]]:
        """(outcome, what it means, intents) for every outcome, disagreements first, the worst first."""
        return [(name, _LABELS[name], self.outcomes[name]) for name in OUTCOMES]

    def reason_counts(self) -> list[tuple[str, int]]:
        """The shadow's reason codes on promoted intents, the most frequent first (a Counter's own `most_common`
        is out of a template's reach: it looks the name up as a key, and a Counter answers 0)."""
        return self.blocking_reasons.most_common()

    def strategy_counts(self) -> list[tuple[str, list[int]]]:
        """(strategy key, intents per outcome in `OUTCOMES` order), by key."""
        return [(key, [counts[o] for o in OUTCOMES]) for key, counts in sorted(self.by_strategy.items())]

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "shadow_decisions": self.shadow_decisions,
            "promoted_signals": self.promoted_signals,
            "outcomes": {name: self.outcomes[name] for name in OUTCOMES},
            "blocking_reasons": dict(self.blocking_reasons.most_common()),
            "by_strategy": {k: {o: c[o] for o in OUTCOMES if c[o]} for k, c in sorted(self.by_strategy.items())},
            "unmatched_decisions": self.unmatched_decisions,
            "unreadable_signals": self.unreadable_signals,
            "examples": [asdict(e) for e in self.examples],
        }


def compare(
    decisions: Iterable[DecisionRecord],
    promoted: Iterable[Promoted],
    since: datetime,
    until: datetime,
    examples: int = 20,
) -> ShadowReport:
    """Shadow decisions taken in [since, until] against the signals recorded (read a little wider by the caller,
    so an intent decided at the window's edge still meets its signal). A promotion outside the window counts only
    when a shadow decision in the window meets it."""
    report = ShadowReport(since, until)
    shadowed: dict[IntentKey, _Shadowed] = {}
    for record in decisions:
        report.shadow_decisions += 1
        key = _shadow_key(record)
        if key is None:
            report.unmatched_decisions += 1
            continue
        held = shadowed.get(key)
        if held is None:
            shadowed[key] = _Shadowed(record)
        else:
            held.decisions += 1
            if _RANK[record.decision] > _RANK[held.record.decision]:
                held.record = record
    served: dict[IntentKey, Promoted] = {}
    for signal in promoted:
        if signal.key is None:
            report.unreadable_signals += since <= signal.ts <= until
            continue
        if since <= signal.ts <= until or signal.key in shadowed:
            report.promoted_signals += signal.key not in served
            served.setdefault(signal.key, signal)
    for key, held in shadowed.items():
        record = held.record
        was_promoted = key in served
        if record.decision == "APPROVED":
            outcome = BOTH if was_promoted else SHADOW_ONLY
        elif not was_promoted:
            outcome = NEITHER
        elif record.decision == "REJECTED":
            outcome = SERVING_ONLY
            report.blocking_reasons.update(record.reason_codes)
        else:
            outcome = SERVING_ONLY_UNDECIDED
        _count(report, outcome, record.strategy_key)
        if outcome in DISAGREEMENTS:
            report.examples.append(
                Example(
                    outcome,
                    record.decision_id,
                    record.strategy_key,
                    record.symbol,
                    record.action,
                    record.intent_id,
                    record.reason_codes,
                )
            )
    for key, signal in served.items():
        if key not in shadowed and since <= signal.ts <= until:
            _count(report, UNSEEN, signal.strategy_key)
            report.examples.append(
                Example(UNSEEN, None, signal.strategy_key, signal.symbol, signal.action, signal.intent_id, ())
            )
    order = {name: i for i, name in enumerate(OUTCOMES)}
    report.examples.sort(key=lambda e: order[e.outcome])
    del report.examples[examples:]
    return report


def _count(report: ShadowReport, outcome: str, key: str | None) -> None:
    report.outcomes[outcome] += 1
    report.by_strategy[key or "(none)"][outcome] += 1


def render(report: ShadowReport) -> str:
    """The report as text: counts (disagreements first), the reasons that would stop promoted intents, per strategy,
    then examples of the disagreements."""
    lines = [
        f"shadow report {report.since.isoformat()} .. {report.until.isoformat()}: {report.shadow_decisions} shadow "
        f"decision(s), {report.promoted_signals} signal(s) promoted by the serving CIO",
    ]
    lines.extend(f"  {n:>7}  {label}" for _, label, n in report.outcome_counts())
    if report.unmatched_decisions or report.unreadable_signals:
        lines.append(
            f"  not comparable: {report.unmatched_decisions} shadow decision(s) and {report.unreadable_signals} "
            "signal(s) without an intent id or timestamp to match on"
        )
    if report.blocking_reasons:
        lines.append("why the shadow rejects what the serving CIO promoted:")
        lines.extend(f"  {n:>7}  {code}" for code, n in report.reason_counts())
    if report.by_strategy:
        lines.append("per strategy (" + ", ".join(OUTCOMES) + "):")
        lines.extend(f"  {key}: " + " ".join(map(str, counts)) for key, counts in report.strategy_counts())
    if report.examples:
        lines.append("disagreements (first ones):")
        for e in report.examples:
            reasons = ",".join(e.reason_codes) or "-"
            lines.append(
                f"  {e.outcome}: strategy={e.strategy_key} symbol={e.symbol} action={e.action} "
                f"intent_id={e.intent_id} decision_id={e.decision_id} reasons={reasons}"
            )
    return "\n".join(lines)


async def recorded_promotions(nc: NATS, stream: str, since: datetime, until: datetime) -> list[Promoted]:
    """Every signal `stream` stored in [since, until], read by an ephemeral consumer from `since` on."""
    js = nc.jetstream()
    info = await js.stream_info(stream)
    subject = (info.config.subjects or [">"])[0]
    sub = await js.pull_subscribe(
        subject,
        stream=stream,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=since,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=60.0,  # ephemeral: gone a minute after this report
        ),
    )
    found: list[Promoted] = []
    try:
        while True:
            pending = (await sub.consumer_info()).num_pending
            if pending == 0:
                return found
            for msg in await sub.fetch(min(_FETCH, pending), timeout=5):
                stored_at = msg.metadata.timestamp
                if stored_at > until:
                    return found
                found.append(promoted_of(msg.data, stored_at))
    finally:
        await sub.unsubscribe()


class PromotionsUnreadableError(Exception):
    """The serving CIO's recorded promotions could not be read: no report can be made (the message says why)."""


def build_report(
    since: datetime,
    until: datetime,
    *,
    gate_id: str | None = None,
    stream: str = SHADOW_SIGNAL_STREAM,
    slack: timedelta = timedelta(seconds=60),
    examples: int = 20,
) -> ShadowReport:
    """The shadow gates' decisions in [since, until] (one gate's with `gate_id`) from the audit store, against the
    promotions `stream` recorded (read `slack` wider, so an intent decided at the window's edge meets its signal),
    over NATS as this process's identity. Raises `PromotionsUnreadableError` rather than compare with nothing."""
    try:
        promoted = asyncio.run(_promotions(stream, since - slack, until + slack))
    except NotFoundError as exc:
        raise PromotionsUnreadableError(
            f"no stream {stream}: no shadow gate recorded promotions (docs/deploy.md, Shadow mode)"
        ) from exc
    except Exception as exc:  # unreachable, refused (the identity may not read the stream), timed out
        raise PromotionsUnreadableError(f"promotions in {stream} could not be read: {exc!r}") from exc
    return compare(shadow_decisions(since, until, gate_id), promoted, since, until, examples)


def shadow_decisions(since: datetime, until: datetime, gate_id: str | None = None) -> Iterator[DecisionRecord]:
    """Every shadow gate's decision in the window from the audit store, a page at a time."""
    log = decision_log()
    cursor: str | None = None
    while True:
        query = DecisionQuery(since=since, until=until, gate_id=gate_id, shadow=True, cursor=cursor, limit=MAX_PAGE)
        page = log.find_decisions(query)
        yield from page.records
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


async def _promotions(stream: str, since: datetime, until: datetime) -> list[Promoted]:
    nc = await connect_once("cio-shadow-report", 3)
    try:
        return await recorded_promotions(nc, stream, since, until)
    finally:
        await nc.close()
