"""`cio.gate.promotion`: what one gate tells its peers after each promotion, so duplicate suppression, rate
limits and pending exposure count the whole queue group's promotions, not only its own."""

import orjson
from pydantic import BaseModel

from cio_kernel.contracts.identity import StrategyKey, Symbol


class PromotionNotice(BaseModel):
    gate_id: str
    ts: float  # the promoting gate's decision time, Unix seconds
    strategy_id: str  # as the strategy spelled it (for people)
    strategy_key: StrategyKey  # what the counters compare
    symbol: Symbol
    action: str
    intent_id: str | None
    notional_usd: float | None
    policy_version: int


def encode_promotion_notice(
    *,
    gate_id: str,
    ts: float,
    strategy_id: str,
    strategy_key: str,
    symbol: str,
    action: str,
    intent_id: str | None,
    notional_usd: float | None,
    policy_version: int,
) -> bytes:
    """`PromotionNotice(...).model_dump_json()`, written directly on the hot path (see `contracts.envelope`)."""
    return orjson.dumps(
        {
            "gate_id": gate_id,
            "ts": ts,
            "strategy_id": strategy_id,
            "strategy_key": strategy_key,
            "symbol": symbol,
            "action": action,
            "intent_id": intent_id,
            "notional_usd": notional_usd,
            "policy_version": policy_version,
        }
    )
