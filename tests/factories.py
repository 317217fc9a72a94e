"""Builders for intents, policies and snapshots used across the suite."""

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cio_kernel import heartbeat_seal
from cio_kernel.contracts.audit_event import encode_audit_event
from cio_kernel.contracts.envelope import Reason
from cio_kernel.contracts.intent import Intent
from cio_kernel.contracts.portfolio import PortfolioSnapshot, Position, StrategyBook
from cio_kernel.policy.document import PolicyDocument
from cio_kernel.policy.signing import PolicySigner, PolicyVerifier
from cio_kernel.policy.spec import PolicySpec
from cio_kernel.policy.store import build_document
from gate.policy.compiled import CompiledPolicy

NOW = 1_800_000_000.0  # a fixed "now" for pure tests (2027-01-15)
# The control plane's signing key as far as the tests are concerned; gates started by tests trust its public key.
TEST_SIGNER = PolicySigner.generate()
TEST_PUBLIC_KEY = base64.b64encode(TEST_SIGNER.public_raw).decode()
# The gates' audit checkpoint key as far as the tests are concerned: gates started by tests sign their chains with
# it, and audit_verify in tests trusts its public half.
TEST_AUDIT_SIGNER = PolicySigner.generate()
TEST_AUDIT_PUBLIC_KEY = base64.b64encode(TEST_AUDIT_SIGNER.public_raw).decode()
# What a reader trusts: the gates' signatures (trips, heartbeats: CIO_AUDIT_PUBLIC_KEY) and the control plane's
# (policies, latch releases).
GATES_KEY = PolicyVerifier([TEST_AUDIT_SIGNER.public_raw])
POLICY_KEY = PolicyVerifier([TEST_SIGNER.public_raw])


def signed_document(spec: PolicySpec, version: int, activated_by: str = "tests") -> PolicyDocument:
    return build_document(spec, version, activated_by, signer=TEST_SIGNER)


def intent_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "strategy_id": "momentum-1",
        "symbol": "BTCUSDT",
        "action": "buy",
        "confidence": 0.8,
        "price": 50_000.0,
        "quantity": 0.01,
        "current_price": 50_000.0,
        "source": "realtime-strategies",
        "strategy": "momentum",
        "signal_id": "sig-1",
        "stop_loss": 49_000.0,
        "timestamp": datetime.fromtimestamp(NOW, UTC).isoformat(),
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def make_intent(**overrides: Any) -> Intent:
    return Intent.model_validate(intent_body(**overrides))


def audit_payload(
    i: int,
    ts: float = NOW,
    snapshot_ts: float | None = None,
    decision: str = "APPROVED",
    reasons: tuple[str, ...] = (),
    **overrides: Any,
) -> bytes:
    """The audit event a gate publishes for `intent_body(**overrides)` decided at `ts` (decision id `d-<i>`, the
    intent as validated, stamped `ts` unless given), as the store keeps it (`DecisionRecord.payload`)."""
    overrides.setdefault("timestamp", datetime.fromtimestamp(ts, UTC).isoformat())
    overrides.setdefault("signal_id", f"sig-{i}")
    intent = make_intent(**overrides)
    dump = intent.model_dump(mode="json", exclude_none=True)
    dump["timestamp"] = intent.timestamp.isoformat() if intent.timestamp else None
    return encode_audit_event(
        decision_id=f"d-{i:04d}",
        ts=datetime.fromtimestamp(ts, UTC),
        gate_id="gate-a",
        subject=f"cio.intent.trading.{intent.strategy_key}",
        strategy_id=intent.strategy_id,
        strategy_key=intent.strategy_key,
        symbol=intent.symbol,
        action=intent.action,
        intent_id=intent.intent_id,
        decision=decision,  # type: ignore[arg-type]
        reasons=[Reason(code=code, message=code.lower()) for code in reasons],
        field_errors=None,
        policy_version=1,
        policy_checksum="sha256:" + "ab" * 32,
        trace_id=f"{i + 1:032x}",
        span_id=f"{i + 1:016x}",
        traceparent=f"00-{i + 1:032x}-{i + 1:016x}-01",
        latency_us=50,
        signal_subject=None,
        intent=dump,
        raw_intent=None,
        state=None
        if snapshot_ts is None
        else {"trading_state": "active", "snapshot_ts": datetime.fromtimestamp(snapshot_ts, UTC)},
    )


def audit_record(i: int, ts: float = NOW, audit_subject: str = "cio.audit.decision.approved", **fields: Any) -> Any:
    """`audit_payload(i, ts, **fields)` as the audit ingest stores it (a `DecisionRecord`)."""
    from audit.records import DecisionRecord

    return DecisionRecord.from_message(audit_subject, audit_payload(i, ts, **fields), None)


def live_intent_body(**overrides: Any) -> dict[str, Any]:
    """An intent stamped with the real current time, for tests that go through a running gate."""
    overrides.setdefault("timestamp", datetime.now(UTC).isoformat())
    return intent_body(**overrides)


def make_spec(**global_rules: Any) -> PolicySpec:
    strategies = global_rules.pop("strategies", {})
    symbols = global_rules.pop("symbols", {})
    return PolicySpec.parse({"global": global_rules, "strategies": strategies, "symbols": symbols})


def compile_spec(spec: PolicySpec, version: int = 1) -> CompiledPolicy:
    return CompiledPolicy(build_document(spec, version, "tests", datetime.fromtimestamp(NOW, UTC)))


def make_snapshot(
    positions: dict[str, tuple[float, float]] | None = None,
    equity: float = 100_000.0,
    drawdown: float = 0.0,
    ts: float = NOW,
    daily_pnl: float | None = None,
    pnl_since: float | None = None,
    strategy_pnl: dict[str, float] | None = None,
    day_start_equity: float | None = None,
) -> PortfolioSnapshot:
    """A snapshot; with `daily_pnl` or `strategy_pnl`, `pnl_since` defaults to the UTC midnight before `ts`."""
    if pnl_since is None and (daily_pnl is not None or strategy_pnl):
        pnl_since = ts // 86_400 * 86_400
    return PortfolioSnapshot(
        ts=datetime.fromtimestamp(ts, UTC),
        equity_usd=equity,
        drawdown_pct=drawdown,
        positions={s: Position(quantity=q, notional_usd=n) for s, (q, n) in (positions or {}).items()},
        pnl_since=datetime.fromtimestamp(pnl_since, UTC) if pnl_since is not None else None,
        daily_pnl_usd=daily_pnl,
        day_start_equity_usd=day_start_equity,
        strategies={k: StrategyBook(daily_pnl_usd=v) for k, v in (strategy_pnl or {}).items()},
    )


def signed_heartbeat(gate_id: str, ttl_s: float = 10, **fields: Any) -> bytes:
    """A gate's heartbeat as a gate with the tests' audit key writes it (signed, `ts` now unless given): what the
    control plane counts as a live gate when the key holding it expires within `ttl_s`."""
    body: dict[str, Any] = {
        "gate_id": gate_id,
        "ts": datetime.now(UTC).isoformat(),
        "policy_version": 1,
        "trading_state": "active",
        "uptime_s": 1.0,
        "counters": {},
        "ttl_s": ttl_s,
        **fields,
    }
    return heartbeat_seal.seal(body, TEST_AUDIT_SIGNER)


def write_audit_signing_key(folder: Path) -> Path:
    """The gates' audit checkpoint key in a file, as `make up` hands it to a gate (CIO_AUDIT_SIGNING_KEY_FILE)."""
    path = folder / "audit-signing.key"
    path.write_text(base64.b64encode(TEST_AUDIT_SIGNER.private_key.private_bytes_raw()).decode() + "\n")
    path.chmod(0o600)
    return path


def ta_bot_body(intent_id: str, **overrides: Any) -> dict[str, Any]:
    """What the TA bot publishes without listening (`Signal.to_dict()`): quantity 0.0 (the trade engine sizes
    it), null sizing fields, `signal_id: null` and its id in `intent_id`, a naive UTC timestamp of now."""
    body: dict[str, Any] = {
        "strategy_id": "Volume Surge Breakout",
        "symbol": "BTCUSDT",
        "action": "buy",
        "confidence": 0.72,
        "current_price": 9.7e4,
        "price": 9.7e4,
        "strategy_mode": "deterministic",
        "quantity": 0.0,
        "source": "ta_bot",
        "strategy": "Volume Surge Breakout",
        "position_size_pct": None,
        "stop_loss": 95_060.0,
        "stop_loss_pct": None,
        "take_profit_pct": None,
        "timestamp": datetime.now(UTC).replace(tzinfo=None).isoformat(),
        "signal_id": None,
        "intent_id": intent_id,
    }
    body.update(overrides)
    return body


def write_tree(root: Path, files: dict[str, str]) -> None:
    """A synthetic source tree under `root`: each relative path with its text (the structure tests read it)."""
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)


def policy_row(number: int, status: str, **global_rules: Any) -> Any:
    """A policy version row as the services leave it, without Redis or NATS: for what reads the database alone."""
    from policies.models import PolicyVersion

    policy = PolicyVersion(version=number, spec=make_spec(**global_rules).model_dump(mode="json", by_alias=True))
    policy.status = status
    policy.full_clean(exclude=["version"])
    policy.save()
    return policy
