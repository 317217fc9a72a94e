"""Latched risk limits (drawdown, daily loss): when a breach trips a latch, and what the gate holds in memory.

Pure: `find_breaches` reads a snapshot against the policy; `LatchBook` is the gate's copy of the latches that
`gate.runtime.latch_sync` keeps in step with Redis. A released latch trips again only on a snapshot taken
after the release, so a human release is never undone by the snapshot that was already on the table.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from cio_kernel.contracts.latch import GLOBAL_KEY, LatchKind, LatchRecord, LatchScope, latch_id
from cio_kernel.contracts.portfolio import PortfolioSnapshot
from cio_kernel.policy.spec import GlobalRules, PolicySpec
from gate.decision.book import Book
from gate.decision.bounds import figures, reaches
from gate.policy.compiled import CompiledPolicy

DAY_S = 86_400.0
# `pnl_since` must name the gate's own trading-day start; a second of slack absorbs rounding by producers.
_WINDOW_SLACK_S = 1.0


@lru_cache(maxsize=16)
def _day_offset_s(start_utc: str) -> float:
    hours, minutes = start_utc.split(":")
    return int(hours) * 3600.0 + int(minutes) * 60.0


def trading_day_start(now: float, start_utc: str) -> float:
    """Unix time at which the trading day containing `now` began (days start at `start_utc`, HH:MM UTC)."""
    offset = _day_offset_s(start_utc)
    return (now - offset) // DAY_S * DAY_S + offset


@lru_cache(maxsize=16)
def _day_name(second: int, start_utc: str) -> str:
    return datetime.fromtimestamp(trading_day_start(second, start_utc), UTC).date().isoformat()


def trading_day(now: float, start_utc: str) -> str:
    """The trading day's name: the UTC date on which it started. Days start on whole seconds, so the whole
    second `now` falls in names the same day (and the name is computed once a second, not per decision)."""
    return _day_name(int(now), start_utc)


def daily_pnl_window_matches(book: Book, rules: GlobalRules, now: float) -> bool:
    """True when the snapshot's daily PnL counts from the start of the gate's current trading day."""
    if book.pnl_since is None:
        return False
    start = trading_day_start(now, rules.trading_day_start_utc)
    return abs(book.pnl_since - start) <= _WINDOW_SLACK_S and book.ts >= start


@dataclass(frozen=True, slots=True)
class Breach:
    kind: LatchKind
    scope: LatchScope
    key: str
    day: str | None
    observed: float
    limit: float
    description: str

    @property
    def id(self) -> str:
        return latch_id(self.kind, self.scope, self.key, self.day)


def drawdown_breach(book: Book, rules: GlobalRules) -> Breach | None:
    snapshot, limit = book.snapshot, rules.max_drawdown_pct
    # Latched limits trip when reached; reached up to the tolerance is reached (gate/decision/bounds.py).
    if limit is None or not reaches(snapshot.drawdown_pct, limit):
        return None
    shown, bound = figures(snapshot.drawdown_pct, limit, "%", 2)
    return Breach(
        "drawdown",
        "global",
        GLOBAL_KEY,
        None,
        snapshot.drawdown_pct,
        limit,
        f"portfolio drawdown {shown} reached the {bound} limit",
    )


def global_daily_loss_breach(book: Book, rules: GlobalRules, now: float) -> Breach | None:
    """The book's loss today against `max_daily_loss_usd` and `max_daily_loss_pct` (of the day's start equity)."""
    snapshot, usd, pct = book.snapshot, rules.max_daily_loss_usd, rules.max_daily_loss_pct
    if usd is None and pct is None:
        return None  # checked first: the PnL window is worth reading only against a limit
    if snapshot.daily_pnl_usd is None or not daily_pnl_window_matches(book, rules, now):
        return None
    loss = -snapshot.daily_pnl_usd
    day = trading_day(now, rules.trading_day_start_utc)
    if usd is not None and reaches(loss, usd):
        shown, bound = figures(loss, usd, ",f", 2)
        why = f"the book lost {shown} USD today; the limit is {bound} USD"
        return Breach("daily_loss", "global", GLOBAL_KEY, day, loss, usd, why)
    start_equity = snapshot.day_start_equity_usd
    if pct is not None and start_equity and reaches(share := loss / start_equity, pct):
        shown, bound = figures(share, pct, "%", 2)
        return Breach(
            "daily_loss",
            "global",
            GLOBAL_KEY,
            day,
            round(share, 6),
            pct,
            f"the book lost {shown} of the day's starting equity today; the limit is {bound}",
        )
    return None


def strategy_daily_loss_breach(book: Book, key: str, limit: float, rules: GlobalRules, now: float) -> Breach | None:
    strategy = book.strategy(key)
    if strategy is None or not daily_pnl_window_matches(book, rules, now):
        return None
    loss = -strategy.daily_pnl_usd
    if not reaches(loss, limit):
        return None
    day = trading_day(now, rules.trading_day_start_utc)
    shown, bound = figures(loss, limit, ",f", 2)
    why = f"{key} lost {shown} USD today; the limit is {bound} USD"
    return Breach("daily_loss", "strategy", key, day, loss, limit, why)


def find_breaches(book: Book, spec: PolicySpec, now: float) -> list[Breach]:
    """Every latchable limit the snapshot breaches under `spec`."""
    rules = spec.global_rules
    found = [drawdown_breach(book, rules), global_daily_loss_breach(book, rules, now)]
    for key, strategy in spec.strategies.items():
        if strategy.max_daily_loss_usd is not None:
            found.append(strategy_daily_loss_breach(book, key, strategy.max_daily_loss_usd, rules, now))
    return [breach for breach in found if breach is not None]


def applies_today(record: LatchRecord, policy: CompiledPolicy, now: float) -> bool:
    """A daily-loss latch lapses when its trading day ends; a drawdown latch holds until released."""
    if record.day is None:
        return True
    return record.day == trading_day(now, policy.global_rules.trading_day_start_utc)


class LatchBook:
    """The latches one gate knows of, by id (active and released: a release blocks re-tripping from older data)."""

    __slots__ = ("_records",)

    def __init__(self) -> None:
        self._records: dict[str, LatchRecord] = {}

    def get(self, latch: str) -> LatchRecord | None:
        return self._records.get(latch)

    def holds_any(self) -> bool:
        return bool(self._records)

    def active(self) -> list[LatchRecord]:
        return [record for record in self._records.values() if record.active]

    def may_trip(self, breach_id: str, snapshot_ts: float) -> bool:
        record = self._records.get(breach_id)
        if record is None:
            return True
        return not record.active and record.released_at is not None and snapshot_ts > record.released_at

    def put(self, record: LatchRecord) -> None:
        self._records[record.id] = record

    def discard(self, record: LatchRecord) -> None:
        """Forget `record` if it is still the one held under its id (a later record replaced it otherwise)."""
        if self._records.get(record.id) is record:
            del self._records[record.id]

    def replace(self, records: dict[str, LatchRecord], keep: set[str]) -> list[LatchRecord]:
        """Adopt what Redis holds (judged: released only by a release the control plane signed), except what would
        release a latch this gate holds without a release that covers it; ids in `keep` (tripped here, not yet
        stored) stay as they are. Returns the active latches Redis lost or holds an older release over: the caller
        stores them again (a Redis emptied, or an old genuine release put back, releases nothing)."""
        adopted: dict[str, LatchRecord] = {}
        put_back: list[LatchRecord] = []
        for latch in self._records.keys() | records.keys():
            held, stored = self._records.get(latch), records.get(latch)
            if held is not None and (latch in keep or stored is None):
                adopted[latch] = held
                if stored is None and held.active and latch not in keep:
                    put_back.append(held)
            elif stored is not None and (held is None or stored.active or not held.active or _covers(stored, held)):
                adopted[latch] = stored
            elif held is not None:
                adopted[latch] = held  # a release of an earlier trip, put back over this one
                put_back.append(held)
        self._records = adopted
        return put_back


def _covers(release: LatchRecord, trip: LatchRecord) -> bool:
    """A (verified) release lifts the trip it names, or one from a snapshot no newer than the release (two gates
    tripped the same latch; one record was stored). A trip from a later snapshot came after it: not lifted."""
    if release.same_trip(trip):
        return True
    return release.released_at is not None and trip.snapshot_ts <= release.released_at


def trip_latches(
    latches: LatchBook, snapshot: PortfolioSnapshot | Book, spec: PolicySpec, now: float, gate_id: str
) -> list[LatchRecord]:
    """Trip a latch for every breach the snapshot shows that is not latched already; returns the new records
    (the caller stores them in Redis and tells the peers)."""
    book = snapshot if isinstance(snapshot, Book) else Book.of(snapshot)
    tripped: list[LatchRecord] = []
    snapshot_ts = book.ts
    for breach in find_breaches(book, spec, now):
        if not latches.may_trip(breach.id, snapshot_ts):
            continue
        record = LatchRecord(
            kind=breach.kind,
            scope=breach.scope,
            key=breach.key,
            day=breach.day,
            tripped_at=now,
            tripped_by=gate_id,
            snapshot_ts=snapshot_ts,
            observed=breach.observed,
            limit=breach.limit,
        )
        latches.put(record)
        tripped.append(record)
    return tripped
