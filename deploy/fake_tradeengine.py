"""A stand-in for the trade engine's HTTP API (public repo `PetroSa2/petrosa-tradeengine`), for `make up` and the
tests (a real HTTP server), never for production. It records every request it receives. Two parts:

- the trading-configuration API (`/api/v1/config/...`, `api_config_routes.py`): global, per-symbol and
  per-symbol-side parameters, resolved global ← symbol ← side, each write a new version, `validate_only` honoured,
  unknown parameters and out-of-range values refused with the engine's envelope;
- the state API the snapshot bridge reads (`GET /state?symbol=`, `api.py` → `dispatcher.get_cio_state` →
  `position_manager.get_cio_portfolio_summary`), computed from a simulated book exactly as the engine computes
  it (422 without `symbol`, 500 `{"detail": "Failed to retrieve engine state: ..."}` when it fails).

Its NATS side, hearing promoted signals and continuing their trace, is `deploy/fake_tradeengine_signals.py`.
"""

import argparse
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from cio_kernel.log_format import configure_logging
from deploy import demo_schedule

DEFAULTS: dict[str, Any] = {
    "leverage": 10,
    "margin_type": "isolated",
    "position_size_pct": 0.1,
    "max_position_size_usd": 1000.0,
    "stop_loss_pct": 2.0,
    "take_profit_pct": 5.0,
    "max_daily_loss_pct": 0.05,
    "max_concurrent_positions": 10,
    "risk_management_enabled": True,
    "enabled": True,
}
RANGES: dict[str, tuple[float, float]] = {
    "leverage": (1, 125),
    "position_size_pct": (0.001, 1.0),
    "max_position_size_usd": (1.0, 1_000_000.0),
    "stop_loss_pct": (0.1, 50.0),
    "take_profit_pct": (0.1, 100.0),
    "max_daily_loss_pct": (0.001, 0.5),
    "max_concurrent_positions": (1, 100),
}
_ROUTE = re.compile(r"^/api/v1/config/trading(?:/(?P<symbol>[A-Za-z0-9_]+))?(?:/(?P<side>LONG|SHORT))?/?$")
KNOWN = set(DEFAULTS) | {
    "default_order_type",
    "time_in_force",
    "position_mode",
    "min_position_size_usd",
    "quantity_multiplier",
    "use_exchange_minimums",
    "override_min_notional",
    "override_min_qty",
    "override_step_size",
    "max_portfolio_exposure_pct",
    "max_daily_trades",
    "signal_conflict_resolution",
    "timeframe_conflict_resolution",
    "max_signal_age_seconds",
    "min_confidence_threshold",
    "position_mode_aware_conflicts",
    "same_direction_conflict_resolution",
    "strategy_weights",
    "timeframe_weights",
    "enable_shorts",
    "enable_longs",
    "slippage_tolerance_pct",
    "max_retries",
}


@dataclass
class EngineBook:
    """What the engine's position manager holds, as `get_cio_state` reads it: positions keyed (symbol, side)
    with an unsigned `quantity` and `avg_price`, the realised-PnL accumulator `daily_pnl`, the portfolio value
    (the exchange's available balance) and the active orders."""

    total_portfolio_value: float = 0.0
    daily_pnl: float = 0.0
    positions: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    active_orders: list[dict[str, Any]] = field(default_factory=list)

    def cio_portfolio_summary(self, symbol: str) -> dict[str, Any]:
        # `position_manager.get_cio_portfolio_summary`, line for line.
        total_value = self.total_portfolio_value
        if total_value <= 0:
            return {"gross_exposure": 0.0, "same_asset_pct": 0.0, "open_positions_count": 0}
        total_exposure = same_asset_value = 0.0
        open_count = 0
        for key, pos in self.positions.items():
            qty = pos.get("quantity", 0.0)
            if qty != 0:
                open_count += 1
                pos_value = abs(qty * pos.get("avg_price", 0.0))
                total_exposure += pos_value
                if key[0] == symbol:
                    same_asset_value += pos_value
        return {
            "gross_exposure": total_exposure / total_value,
            "same_asset_pct": same_asset_value / total_value,
            "open_positions_count": open_count,
        }

    def cio_state(self, symbol: str) -> dict[str, Any]:
        # `dispatcher.get_cio_state`; the risk limits are the engine's settings (here the configuration defaults).
        return {
            "portfolio": self.cio_portfolio_summary(symbol),
            "risk_limits": {
                "max_drawdown_pct": DEFAULTS["max_daily_loss_pct"],
                "max_orders_global": 10,
                "max_orders_per_symbol": 2,
                "max_position_size_usd": DEFAULTS["max_position_size_usd"],
            },
            "env_stats": {
                "global_drawdown_pct": max(-self.daily_pnl, 0.0) / max(self.total_portfolio_value, 1.0),
                "open_orders_global": len(self.active_orders),
                "open_orders_symbol": sum(1 for order in self.active_orders if order.get("symbol") == symbol),
                "available_capital_usd": self.total_portfolio_value,
            },
        }


def demo_book() -> EngineBook:
    """The demo's book under `make up`: concentrated in BTC (the Strategist's concentration trigger), a small
    realised loss today, DOGE held while the example policy keeps it reducing-only."""
    return EngineBook(
        total_portfolio_value=250_000.0,
        daily_pnl=-1_200.0,
        positions={
            ("BTCUSDT", "LONG"): {"quantity": 0.4, "avg_price": 97_000.0},
            ("ETHUSDT", "LONG"): {"quantity": 5.0, "avg_price": 3_400.0},
            ("DOGEUSDT", "LONG"): {"quantity": 20_000.0, "avg_price": 0.4},
        },
        active_orders=[{"symbol": "BTCUSDT", "order_id": "demo-1"}],
    )


@dataclass
class FakeTradeEngine:
    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = None
    overrides: dict[tuple[str | None, str | None], dict[str, Any]] = field(default_factory=dict)
    versions: dict[tuple[str | None, str | None], int] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)
    # Test knobs for what a real engine does on a bad day: `refuse_writes` answers a write with the engine's
    # error envelope (certainly not applied); with `hold_writes` set, each write waits for `release` (the
    # client may time out meanwhile), then is applied, or dropped if `drop_held`. `arrived` / `settled` count
    # the writes that reached the handler / were finished.
    refuse_writes: bool = False
    hold_writes: bool = False
    drop_held: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    settled: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    # The state API: the book it is computed from; `state_failure`, when set, is answered as the engine answers
    # an exception in `get_cio_state` (500); `state_payload`, when set, is sent instead of the computed state
    # (bytes as they are: a malformed answer).
    book: EngineBook = field(default_factory=EngineBook)
    state_failure: str | None = None
    state_payload: bytes | None = None
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def resolved(self, symbol: str | None, side: str | None) -> dict[str, Any]:
        values = {**DEFAULTS, **self.overrides.get((None, None), {})}
        if symbol:
            values.update(self.overrides.get((symbol, None), {}))
            if side:
                values.update(self.overrides.get((symbol, side), {}))
        return values

    def _errors(self, parameters: dict[str, Any]) -> list[str]:
        errors = []
        for name, value in parameters.items():
            if name not in KNOWN:
                errors.append(f"Unknown parameter: {name}")
            elif name in RANGES and isinstance(value, int | float):
                low, high = RANGES[name]
                if value < low:
                    errors.append(f"{name} must be >= {low}")
                elif value > high:
                    errors.append(f"{name} must be <= {high}")
        return errors

    def state(self, query: str) -> tuple[int, dict[str, Any] | bytes]:
        """`GET /state?symbol=`: FastAPI's 422 without the parameter, the engine's 500 when it fails."""
        symbols = parse_qs(query, keep_blank_values=True).get("symbol")
        self.requests.append(("GET", "/state", {"symbol": symbols[-1] if symbols else None}))
        if symbols is None:
            missing = {"type": "missing", "loc": ["query", "symbol"], "msg": "Field required", "input": None}
            return 422, {"detail": [missing]}
        if self.state_failure is not None:
            return 500, {"detail": f"Failed to retrieve engine state: {self.state_failure}"}
        if self.state_payload is not None:
            return 200, self.state_payload
        with self._lock:
            return 200, self.book.cio_state(symbols[-1])

    def handle(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
        self.requests.append((method, path, body))
        if path == "/api/v1/config/trading/schema":
            return 200, {
                "success": True,
                "data": {n: {"type": type(v).__name__, "default": v} for n, v in DEFAULTS.items()},
            }
        match = _ROUTE.match(path)
        if match is None:
            return 404, {"detail": "Not Found"}
        symbol = match["symbol"].upper() if match["symbol"] else None
        side = match["side"]
        key = (symbol, side)
        if method == "GET":
            data = {
                "symbol": symbol,
                "side": side,
                "parameters": self.resolved(symbol, side),
                "version": self.versions.get(key, 1),
                "source": "resolved",
            }
            return 200, {"success": True, "data": data, "metadata": {}}
        body = body or {}
        parameters = body.get("parameters") or {}
        errors = self._errors(parameters)
        if errors or not body.get("changed_by"):
            errors = errors or ["changed_by is required"]
            error = {
                "code": "VALIDATION_ERROR",
                "message": "Parameter validation failed",
                "details": {"errors": errors},
            }
            return 200, {"success": False, "error": error}
        if body.get("validate_only"):
            return 200, {"success": True, "data": None, "metadata": {"validation": "passed"}}
        if self.refuse_writes:
            return 200, {"success": False, "error": {"code": "INTERNAL_ERROR", "message": "storage is read-only"}}
        self.arrived.release()
        try:
            return self._write(key, parameters)
        finally:
            self.settled.release()

    def _write(self, key: tuple[str | None, str | None], parameters: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        symbol, side = key
        if self.hold_writes:
            self.release.wait()
            if self.drop_held:
                return 500, {"detail": "lost"}
        with self._lock:
            self.overrides.setdefault(key, {}).update(parameters)
            self.versions[key] = self.versions.get(key, 1) + 1
            now = datetime.now(UTC).isoformat()
            data = {
                "symbol": symbol,
                "side": side,
                "parameters": dict(self.overrides[key]),
                "version": self.versions[key],
                "source": "mongodb",
                "created_at": now,
                "updated_at": now,
            }
        return 200, {"success": True, "data": data, "metadata": {"action": "updated"}}

    def start(self) -> "FakeTradeEngine":
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self, method: str) -> None:
                url = urlsplit(self.path)
                answer: dict[str, Any] | bytes
                if method == "GET" and url.path == "/state":
                    status, answer = engine.state(url.query)  # no token: the engine's own route asks for none
                elif engine.token and self.headers.get("Authorization") != f"Bearer {engine.token}":
                    status, answer = 401, {"detail": "Unauthorized"}
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = orjson.loads(self.rfile.read(length)) if length else None
                    status, answer = engine.handle(method, url.path, body)
                payload = answer if isinstance(answer, bytes) else orjson.dumps(answer)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

        from deploy.servers import free_port

        self.port = self.port or free_port()
        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()  # no handler thread is left waiting
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# The demo schedule's drawdown: a realised loss of this share of equity, past the example policy's 15% limit.
DEMO_DRAWDOWN = 0.16
ENGINE_PHASES = frozenset({"engine_hiccup", "drawdown"})


def apply_phases(engine: FakeTradeEngine, playing: frozenset[str], calm_pnl: float) -> None:
    """The book and state API as the demo schedule's phases want them now (the calm book when none plays)."""
    with engine._lock:
        engine.state_failure = "demo engine hiccup" if "engine_hiccup" in playing else None
        lost = DEMO_DRAWDOWN * engine.book.total_portfolio_value
        engine.book.daily_pnl = -lost if "drawdown" in playing else calm_pnl


def play_schedule(engine: FakeTradeEngine, clock: demo_schedule.Clock, every_s: float = 1.0) -> None:
    """The stand-in's part of the demo schedule (deploy/demo_schedule.py): its state API fails during
    `engine_hiccup`, and its book carries a loss past the drawdown limit during `drawdown`. Runs forever."""
    calm_pnl = engine.book.daily_pnl
    playing: frozenset[str] = frozenset()
    while True:
        now = demo_schedule.active(clock.elapsed(), clock.enabled) & ENGINE_PHASES
        if now != playing:
            apply_phases(engine, now, calm_pnl)
            for name in sorted(now - playing):
                print(f"demo schedule: {name} starts", flush=True)
            for name in sorted(playing - now):
                print(f"demo schedule: {name} ends", flush=True)
            playing = now
        time.sleep(every_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--empty-book", action="store_true", help="serve a flat book instead of the demo's")
    parser.add_argument(
        "--schedule", action="store_true", help="play the demo schedule's engine hiccup and drawdown on the book"
    )
    args = parser.parse_args()
    engine = FakeTradeEngine(port=args.port, book=EngineBook() if args.empty_book else demo_book()).start()
    print(f"trade-engine stand-in on {engine.url}: /api/v1/config/trading, /state?symbol=", flush=True)
    if args.schedule:
        play_schedule(engine, demo_schedule.Clock.from_env())
    threading.Event().wait()


if __name__ == "__main__":
    configure_logging("trade-engine")  # a timestamp on every line, text or JSON (docs/logging.md)
    main()
