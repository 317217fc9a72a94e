"""Realistic audit events, built the way a gate builds them (`encode_audit_event`, UUIDv7 decision ids,
one hash chain per gate, the gate's headers), each with the rows the Django store writes for it: made by the
store's own row mapping (audit/store/django_rows.py), with datetimes as the backend stores them (`Databases.ts`),
and checked against what `insert_decisions` writes for the event as published and what it stored, read back
(step `rows_check`)."""

import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from audit.records import DecisionRecord
from audit.store.django_rows import DECISION_COLUMNS, reason_rows, row_values
from bench.audit_store.databases import Databases, sqlite_ts
from cio_kernel.audit_chain import CHAIN_HEADER, GENESIS, HASH_HEADER, PREV_HEADER, SEQ_HEADER, chain_id, link_hash
from cio_kernel.contracts.audit_event import encode_audit_event
from cio_kernel.contracts.envelope import Reason
from cio_kernel.contracts.identity import strategy_key
from cio_kernel.ids import COUNTER_BITS, uuid7_int

# -- realistic audit events ------------------------------------------------------------------------------------
T0 = datetime(2026, 3, 2, tzinfo=UTC)


SPACING_S = 0.5  # one decision every half second on average: 1M records span about six days


VERSION_EVERY = 20_000  # a policy activation every 20k decisions (~50 versions in 1M)


GATES = (("gate-a", 5), ("gate-b", 4), ("gate-c", 1))


STRATEGIES = [
    ("momentum-1", 18),
    ("mean-revert", 14),
    ("TA Bot Mean Reversion", 12),
    ("Iceberg Order Detector", 9),
    ("ta-bot", 8),
    ("llm-swing", 6),
    ("grid-btc", 6),
    ("breakout-4h", 5),
    ("funding-arb", 4),
    ("vwap-exec", 4),
    ("rsi-divergence", 3),
    ("pairs-eth-btc", 3),
    ("news-sentiment", 2),
    ("liquidation-hunter", 2),
    ("orderflow-imbalance", 1),
    ("dca-weekly", 1),
]


PRICES = {
    "BTCUSDT": 97_000.0,
    "ETHUSDT": 3_400.0,
    "SOLUSDT": 240.0,
    "BNBUSDT": 690.0,
    "XRPUSDT": 2.4,
    "ADAUSDT": 1.05,
    "DOGEUSDT": 0.38,
    "AVAXUSDT": 48.0,
    "LINKUSDT": 24.0,
    "DOTUSDT": 9.1,
    "MATICUSDT": 0.62,
    "LTCUSDT": 110.0,
    "ATOMUSDT": 11.0,
    "NEARUSDT": 6.8,
    "APTUSDT": 12.5,
    "ARBUSDT": 1.1,
    "OPUSDT": 2.6,
    "INJUSDT": 31.0,
    "SUIUSDT": 4.2,
    "TRXUSDT": 0.25,
}


SYMBOL_WEIGHTS = [30, 20, 10, 6, 5, 4, 4, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1]


REJECT_CODES = [
    ("CONFIDENCE_TOO_LOW", 30),
    ("ORDER_NOTIONAL_EXCEEDED", 14),
    ("SYMBOL_EXPOSURE_EXCEEDED", 10),
    ("STOP_LOSS_REQUIRED", 8),
    ("RATE_LIMITED", 8),
    ("POSITION_SIZE_EXCEEDED", 6),
    ("PRICE_COLLAR_BREACHED", 6),
    ("INTENT_STALE", 5),
    ("DUPLICATE_INTENT", 4),
    ("SYMBOL_NOT_ALLOWED", 4),
    ("STOP_LOSS_TOO_WIDE", 3),
    ("TRADING_HALTED", 1),
    ("LEVERAGE_EXCEEDED", 1),
]


RETRY_CODES = [("POLICY_STALE", 3), ("SNAPSHOT_STALE", 3), ("DECISION_TIMEOUT", 1)]


AUDIT_SUBJECTS = {
    "APPROVED": "cio.audit.decision.approved",
    "REJECTED": "cio.audit.decision.rejected",
    "RETRY_SAFE": "cio.audit.decision.retry_safe",
}


CHECKSUM = "sha256:" + "5e" * 32


def _cum(weighted: list[tuple[str, int]] | list[int]) -> list[int]:
    total, out = 0, []
    for item in weighted:
        total += item[1] if isinstance(item, tuple) else item
        out.append(total)
    return out


@dataclass(slots=True)
class Event:
    audit_subject: str
    decision_id: str
    payload: bytes
    headers: dict[str, str]
    row: tuple[Any, ...]  # audit_logs values in DECISION_COLUMNS order
    reasons: list[tuple[Any, ...]]  # audit_log_reasons (decision_id, code, ts)


class Fleet:
    """A few gates deciding for a fleet of strategies: audit events in time order, each gate's chain linked."""

    def __init__(self, seed: int = 20260302, ts: Callable[[datetime], Any] = sqlite_ts) -> None:
        self.ts = ts  # the rows' datetimes as the backend's `insert_decisions` writes them (Databases.ts)
        self.rng = random.Random(seed)
        self.k = 0
        self.chains = {gate: [chain_id(gate, 1_772_400_000 + n), 0, GENESIS] for n, (gate, _) in enumerate(GATES)}
        self.gates = [g for g, _ in GATES]
        self.gate_cum = _cum(list(GATES))
        self.strategies = [s for s, _ in STRATEGIES]
        self.strategy_cum = _cum(STRATEGIES)
        self.symbols = list(PRICES)
        self.symbol_cum = _cum(SYMBOL_WEIGHTS)
        self.reject = [c for c, _ in REJECT_CODES]
        self.reject_cum = _cum(REJECT_CODES)
        self.retry = [c for c, _ in RETRY_CODES]
        self.retry_cum = _cum(RETRY_CODES)
        self._shed = Reason(code="OVERLOADED", message="the gate is overloaded: retry")

    def reason(self, code: str) -> Any:
        rng = self.rng
        if code in ("POLICY_STALE", "SNAPSHOT_STALE", "DECISION_TIMEOUT"):
            return Reason(code=code, message=f"{code.lower().replace('_', ' ')}: retry")
        limit = round(rng.choice((0.5, 0.6, 5e4, 2.5e5, 1e6, 30.0)), 3)
        return Reason(code=code, message=code.lower().replace("_", " "), observed=round(limit * 1.3, 3), limit=limit)

    def next(self) -> Event:
        rng = self.rng
        k = self.k
        self.k += 1
        ts = T0 + timedelta(seconds=(k + rng.random()) * SPACING_S)
        gate = rng.choices(self.gates, cum_weights=self.gate_cum)[0]
        strategy = rng.choices(self.strategies, cum_weights=self.strategy_cum)[0]
        symbol = rng.choices(self.symbols, cum_weights=self.symbol_cum)[0]
        action = "buy" if rng.random() < 0.52 else "sell"
        roll = rng.random()
        decision = "APPROVED" if roll < 0.55 else "REJECTED" if roll < 0.93 else "RETRY_SAFE"
        # As the gate makes them (cio_kernel/ids.py): UUIDv7 of the decision's millisecond, from this seed.
        decision_id = f"{uuid7_int(int(ts.timestamp() * 1000), rng.getrandbits(COUNTER_BITS - 1)):032x}"
        trace_id, span_id = f"{rng.getrandbits(128):032x}", f"{rng.getrandbits(64):016x}"
        traceparent = f"00-{trace_id}-{span_id}-01"
        latency_us = int(rng.lognormvariate(4.6, 0.6))
        shed = decision == "RETRY_SAFE" and rng.random() < 0.5
        version = 1 + k // VERSION_EVERY
        if decision == "APPROVED":
            reasons = []
        elif decision == "REJECTED":
            codes = [rng.choices(self.reject, cum_weights=self.reject_cum)[0]]
            if rng.random() < 0.2:
                codes.append(rng.choices(self.reject, cum_weights=self.reject_cum)[0])
            reasons = [self.reason(c) for c in dict.fromkeys(codes)]
        elif shed:
            reasons = [self._shed]
        else:
            reasons = [self.reason(rng.choices(self.retry, cum_weights=self.retry_cum)[0])]
        if shed:  # shed unparsed: no intent, no policy, no state
            strategy_id = key = symbol_id = side = intent_id = signal_id = None
            intent = policy_version = checksum = state = None
            intake = "intent.trading.unparsed"
        else:
            strategy_id, symbol_id, side = strategy, symbol, action
            key = strategy_key(strategy)
            price = round(PRICES[symbol] * (1 + (rng.random() - 0.5) * 0.01), 6)
            signal_id = intent_id = f"sig-{rng.getrandbits(64):016x}"
            intent = {
                "strategy_id": strategy,
                "symbol": symbol,
                "action": action,
                "confidence": round(rng.uniform(0.3, 0.99), 3),
                "price": price,
                "quantity": round(1000.0 / price, 6),
                "current_price": price,
                "source": "strategy-fleet",
                "strategy": strategy,
                "signal_id": signal_id,
                "stop_loss": round(price * (0.98 if action == "buy" else 1.02), 6),
                "timestamp": (ts - timedelta(milliseconds=rng.randint(2, 40))).isoformat(),
                "_otel_trace_context": {"traceparent": traceparent},
            }
            policy_version, checksum = version, CHECKSUM
            trading = "active" if rng.random() < 0.97 else "reducing"
            state = {"trading_state": trading, "snapshot_ts": ts - timedelta(milliseconds=rng.randint(200, 4000))}
            intake = f"intent.trading.{symbol}"
        # What the event and the stored record share, spelled once.
        common: dict[str, Any] = {
            "decision_id": decision_id,
            "ts": ts,
            "gate_id": gate,
            "subject": intake,
            "strategy_id": strategy_id,
            "strategy_key": key,
            "symbol": symbol_id,
            "action": side,
            "intent_id": intent_id,
            "decision": decision,
            "policy_version": policy_version,
            "policy_checksum": checksum,
            "trace_id": trace_id,
            "span_id": span_id,
            "latency_us": latency_us,
        }
        payload = encode_audit_event(
            **common,
            reasons=reasons,
            field_errors=None,
            traceparent=traceparent,
            signal_subject=f"signals.trading.{strategy}" if decision == "APPROVED" else None,
            intent=intent,
            raw_intent=None,
            state=state,
        )
        audit_subject = AUDIT_SUBJECTS[decision]
        link = self.chains[gate]
        chain, seq, prev = link[0], link[1] + 1, link[2]
        digest = link_hash(chain, seq, prev, audit_subject, payload)
        link[1], link[2] = seq, digest
        headers = {"Nats-Msg-Id": decision_id, CHAIN_HEADER: chain, SEQ_HEADER: str(seq), PREV_HEADER: prev}
        headers[HASH_HEADER] = digest
        record = DecisionRecord(
            **common,
            signal_id=signal_id,
            reason_codes=tuple(dict.fromkeys(r.code for r in reasons)),
            trading_state=state["trading_state"] if state else None,
            snapshot_ts=state["snapshot_ts"] if state else None,
            audit_subject=audit_subject,
            payload=payload,
            chain=chain,
            seq=seq,
            prev_hash=prev,
            hash=digest,
        )
        row = row_values(record, self.ts(ts + timedelta(milliseconds=150 + rng.randint(0, 900))), self.ts)
        return Event(audit_subject, decision_id, payload, headers, row, reason_rows(record, row))

    def take(self, count: int) -> list[Event]:
        return [self.next() for _ in range(count)]


def check_rows_like_insert_decisions(events: list[Event]) -> None:
    """The preload's rows must be exactly what `insert_decisions` writes for the same event as published (parsed
    from it, with the database's own datetime conversion): the record the fleet built is the ingest's."""
    from django.db import connection

    adapt = connection.ops.adapt_datetimefield_value
    for ev in events:
        record = DecisionRecord.from_message(ev.audit_subject, ev.payload, ev.headers)
        expected = row_values(record, ev.row[-1], adapt)  # the same ingested_at: the one column the store stamps
        for column, value, wanted in zip(DECISION_COLUMNS, ev.row, expected, strict=True):
            if value != wanted:
                raise RuntimeError(f"preload row differs from insert_decisions in {column}: {value!r} != {wanted!r}")
        if reason_rows(record, expected) != ev.reasons:
            raise RuntimeError(f"preload reasons differ from insert_decisions for {ev.decision_id}")


def check_rows_as_stored(dbs: Databases, events: list[Event]) -> None:
    """The same events stored by `insert_decisions` into a fresh database and read back as stored (no Django
    conversions): every column but `ingested_at` (the store's own clock) equals the preload's row."""
    from audit.store.django_db import DjangoAuditStore

    handle = dbs.fresh("rows-check")
    DjangoAuditStore().insert_decisions(
        [DecisionRecord.from_message(e.audit_subject, e.payload, e.headers) for e in events]
    )
    dbs.close()
    columns = ", ".join(DECISION_COLUMNS[:-1])
    stored = {row[0]: row for row in dbs.rows(handle, f"SELECT {columns} FROM audit_logs")}
    reasons = sorted(dbs.rows(handle, "SELECT decision_id, code, ts FROM audit_log_reasons"))
    if len(stored) != len(events):
        raise RuntimeError(f"insert_decisions stored {len(stored)} of {len(events)}")
    for ev in events:
        for column, value, wanted in zip(DECISION_COLUMNS, ev.row, stored[ev.decision_id], strict=False):
            if value != wanted:
                raise RuntimeError(f"preload row differs from the stored one in {column}: {value!r} != {wanted!r}")
    if sorted(tuple(r) for e in events for r in e.reasons) != [tuple(r) for r in reasons]:
        raise RuntimeError("preload reasons differ from the stored ones")


def rows_check(dbs: Databases, seed: int) -> dict[str, Any]:
    sample = Fleet(seed, dbs.ts).take(2000)
    check_rows_like_insert_decisions(sample)
    check_rows_as_stored(dbs, sample)
    size = statistics.fmean(len(e.payload) for e in sample)
    reasons = sum(len(e.reasons) for e in sample) / len(sample)
    print(
        f"  2,000 generated rows equal insert_decisions' own, and what it stored ({dbs.vendor}); event "
        f"{size:,.0f} bytes, {reasons:.2f} reasons per decision on average",
        flush=True,
    )
    return {"mean_payload_bytes": round(size), "reasons_per_decision": round(reasons, 2)}
