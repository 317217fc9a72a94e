"""`cio.gate.promotion`: what one gate tells its peers after each promotion, so duplicate suppression, rate
limits and pending exposure count the whole queue group's promotions, not only its own."""

from pydantic import BaseModel


class PromotionNotice(BaseModel):
    gate_id: str
    ts: float  # the promoting gate's decision time, Unix seconds
    strategy_id: str
    symbol: str
    action: str
    intent_id: str | None
    notional_usd: float | None
    policy_version: int
