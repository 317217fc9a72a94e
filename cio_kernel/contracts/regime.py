"""`cio.market.regime`: what market data (or a simulator) reports about one symbol's recent behaviour.

One message per symbol. Only the fields below are read (and only they ever reach the Strategist's context);
anything else a producer adds is kept on the model but ignored (docs/contracts.md, "Market regime").
"""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from cio_kernel.contracts.identity import SymbolKey


class RegimeUpdate(BaseModel):
    model_config = ConfigDict(frozen=True, allow_inf_nan=False, extra="allow")

    ts: datetime
    symbol: SymbolKey
    volatility: Annotated[float, Field(ge=0, le=10)] = Field(
        description="Realised volatility over `window` as a fraction of price (0.03 = 3 %)"
    )
    trend: Annotated[float, Field(ge=-1, le=1)] | None = Field(
        default=None, description="Direction and strength of the trend: -1 strongly down … +1 strongly up"
    )
    regime: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")] | None = Field(
        default=None, description="The producer's own label (`trending`, `ranging`, `volatile`, …)"
    )
    window: Annotated[str, Field(pattern=r"^[0-9]{1,4}[smhd]$")] = "1h"
