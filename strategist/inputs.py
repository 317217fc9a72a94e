"""What the Strategist knows of the market and the book: the latest regime per symbol and the latest portfolio
summary, kept in Redis by the listener (`manage.py strategist_listen`) and read by every cycle.

Only allow-listed fields are ever kept: numbers, enums and labels copied field by field from the wire models,
never a producer's extra fields or free text. Whatever a producer attaches (an API key in an extra field, a
note) is dropped here, before anything is stored, so it cannot reach a prompt or a thought.

Each entry is kept *sealed*, with its source and when the listener stored it (`Sealed`): the `strategist` Redis
identity may write these keys, so a reader takes an entry only when its seal verifies (`seals.py`), it is within
its bounds, its time is not in the future and it is fresh. What it refuses or skips is returned as a problem, in
our own words, for the thought; a refused entry (unsealed, unreadable, out of bounds) is also an anomaly."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cio_kernel.contracts.identity import SymbolKey, is_canonical_symbol
from cio_kernel.contracts.portfolio import PortfolioSnapshot
from cio_kernel.contracts.regime import RegimeUpdate
from cio_kernel.subjects import MARKET_REGIME, PORTFOLIO_SNAPSHOT
from strategist import seals

REGIME_KEY = "strategist:regime"  # hash: symbol -> Sealed RegimeEntry JSON
PORTFOLIO_KEY = "strategist:portfolio"  # Sealed PortfolioSummary JSON
MAX_SYMBOLS = 200  # a context names at most this many symbols (the most exposed / most volatile first)
MAX_SKEW_S = 60.0  # a report's time may be this far ahead of ours (clocks differ); further is out of bounds


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class RegimeEntry(_Input):
    ts: datetime
    volatility: Annotated[float, Field(ge=0, le=10)]
    trend: Annotated[float, Field(ge=-1, le=1)] | None = None
    label: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")] | None = None
    window: Annotated[str, Field(pattern=r"^[0-9]{1,4}[smhd]$")] = "1h"

    @classmethod
    def of(cls, update: RegimeUpdate) -> "RegimeEntry":
        return cls(
            ts=update.ts, volatility=update.volatility, trend=update.trend, label=update.regime, window=update.window
        )


class PortfolioSummary(_Input):
    ts: datetime
    equity_usd: Annotated[float, Field(ge=0)]
    drawdown_pct: Annotated[float, Field(ge=0, le=1)]
    daily_pnl_usd: float | None = None
    gross_exposure_usd: Annotated[float, Field(ge=0)]
    exposure_usd: Annotated[dict[SymbolKey, Annotated[float, Field(ge=0)]], Field(max_length=MAX_SYMBOLS)] = Field(
        default_factory=dict
    )

    @classmethod
    def of(cls, snapshot: PortfolioSnapshot) -> "PortfolioSummary":
        exposure = {
            symbol: round(position.notional_usd, 2)
            for symbol, position in sorted(snapshot.positions.items(), key=lambda kv: -kv[1].notional_usd)
            if is_canonical_symbol(symbol)
        }
        return cls(
            ts=snapshot.ts,
            equity_usd=round(snapshot.equity_usd, 2),
            drawdown_pct=round(snapshot.drawdown_pct, 6),
            daily_pnl_usd=round(snapshot.daily_pnl_usd, 2) if snapshot.daily_pnl_usd is not None else None,
            gross_exposure_usd=round(snapshot.gross_exposure_usd, 2),
            exposure_usd=dict(list(exposure.items())[:MAX_SYMBOLS]),
        )

    def concentration(self) -> dict[str, float]:
        """Each symbol's share of gross exposure."""
        gross = self.gross_exposure_usd
        return {s: round(v / gross, 4) for s, v in self.exposure_usd.items()} if gross > 0 else {}


# -- sealed storage -----------------------------------------------------------------------------------------------
REGIME, PORTFOLIO = "regime", "portfolio"
_SOURCES = {REGIME: MARKET_REGIME, PORTFOLIO: PORTFOLIO_SNAPSHOT}


class Sealed(BaseModel):
    """How an input is kept: the entry, where it came from, when the listener stored it, and the seal over all of
    it and the name it is kept under (so an entry moved to another symbol does not verify)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entry: dict[str, Any]
    source: str
    stored_at: datetime
    seal: str


def _parts(kind: str, name: str, entry: dict[str, Any], source: str, stored_at: datetime) -> tuple[str, ...]:
    return (kind, name, orjson.dumps(entry, option=orjson.OPT_SORT_KEYS).decode(), source, stored_at.isoformat())


def sealed(kind: str, name: str, value: _Input, now: datetime | None = None) -> str:
    """`value` as stored: JSON of a `Sealed`."""
    entry = value.model_dump(mode="json")
    stored_at = (now or datetime.now(UTC)).astimezone(UTC)
    source = _SOURCES[kind]
    mark = seals.seal(f"input.{kind}", *_parts(kind, name, entry, source, stored_at))
    return Sealed(entry=entry, source=source, stored_at=stored_at, seal=mark).model_dump_json()


MAX_PROBLEMS = 50  # listed in a thought; the `strategist` password can plant any number of entries


@dataclass
class Checked:
    """What a read kept, what it skipped as stale, and what it refused (not ours, or out of bounds). At most
    `MAX_PROBLEMS` are listed (the last line then counts the rest), so planted entries cannot bloat a thought."""

    problems: list[str] = field(default_factory=list)
    refused: int = 0
    unlisted: int = 0

    def skip(self, what: str, why: str) -> None:
        self._note(f"{what}: {why} (not used)")

    def refuse(self, what: str, why: str) -> None:
        self.refused += 1
        self._note(f"{what}: {why} (refused)")

    def _note(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS - 1:
            self.problems.append(text)
            return
        self.unlisted += 1
        more = f"... and {self.unlisted} more (not listed)"
        if len(self.problems) == MAX_PROBLEMS:
            self.problems[-1] = more
        else:
            self.problems.append(more)


def unseal[T: _Input](
    kind: str, name: str, raw: bytes | str | None, model: type[T], now: datetime, max_age_s: float, checked: Checked
) -> T | None:
    """The entry kept under `name`, when it is ours, within its bounds and fresh; else None, and `checked` says why."""
    what = f"{kind} {name}" if kind == REGIME else kind
    if raw is None:
        return None
    try:
        kept = Sealed.model_validate_json(raw)
    except ValidationError:
        checked.refuse(what, "not a sealed entry")
        return None
    parts = _parts(kind, name, kept.entry, kept.source, kept.stored_at.astimezone(UTC))
    if kept.source != _SOURCES[kind] or not seals.verifies(f"input.{kind}", kept.seal, *parts):
        checked.refuse(what, "its seal does not verify: not written by the listener")
        return None
    try:
        value = model.model_validate(kept.entry)
    except ValidationError:
        checked.refuse(what, "out of bounds")
        return None
    ts, stored_at = _utc(value.ts), _utc(kept.stored_at)  # type: ignore[attr-defined]
    skew = timedelta(seconds=MAX_SKEW_S)
    if ts > now + skew or stored_at > now + skew:
        checked.refuse(what, "dated in the future")
        return None
    age = (now - min(ts, stored_at)).total_seconds()
    if age > max_age_s:
        checked.skip(what, f"stale ({int(age)} s old, at most {int(max_age_s)})")
        return None
    return value


def store_regime(client: Any, update: RegimeUpdate) -> RegimeEntry:
    entry = RegimeEntry.of(update)
    client.hset(REGIME_KEY, update.symbol, sealed(REGIME, update.symbol, entry))
    return entry


def store_portfolio(client: Any, snapshot: PortfolioSnapshot) -> PortfolioSummary:
    summary = PortfolioSummary.of(snapshot)
    client.set(PORTFOLIO_KEY, sealed(PORTFOLIO, PORTFOLIO, summary))
    return summary


def read_regimes(
    client: Any, max_age_s: float, now: datetime, checked: Checked | None = None
) -> dict[str, RegimeEntry]:
    """Fresh entries of ours only: a symbol nobody has reported on for `max_age_s` is not in the context."""
    checked = checked if checked is not None else Checked()
    found = {}
    for raw_symbol, raw in (client.hgetall(REGIME_KEY) or {}).items():
        symbol = raw_symbol.decode(errors="replace") if isinstance(raw_symbol, bytes) else raw_symbol
        if not is_canonical_symbol(symbol):  # the listener stores canonical symbols only; anything else is not ours
            checked.refuse("regime", "an entry under a name that is not a canonical symbol")
            continue
        entry = unseal(REGIME, symbol, raw, RegimeEntry, now, max_age_s, checked)
        if entry is not None:
            found[symbol] = entry
    ranked = sorted(found.items(), key=lambda kv: -kv[1].volatility)[:MAX_SYMBOLS]
    return dict(sorted(ranked))


def read_portfolio(
    client: Any, max_age_s: float, now: datetime, checked: Checked | None = None
) -> PortfolioSummary | None:
    checked = checked if checked is not None else Checked()
    return unseal(PORTFOLIO, PORTFOLIO, client.get(PORTFOLIO_KEY), PortfolioSummary, now, max_age_s, checked)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
