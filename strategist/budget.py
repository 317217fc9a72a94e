"""The LLM's daily token budget, shared by every worker: one Redis counter per UTC day.

A call is refused before it is made when what it could spend (its prompt plus the completion's cap) would take
the day over the budget; what a call did spend (the server's `usage`, or an estimate) is added afterwards."""

from datetime import datetime
from typing import Any

BUDGET_KEY_PREFIX = "strategist:llm_tokens:"  # + YYYY-MM-DD (UTC)
_KEEP_S = 2 * 86_400


class TokenBudget:
    def __init__(self, client: Any, daily_tokens: int) -> None:
        self._client = client
        self.daily_tokens = daily_tokens

    @staticmethod
    def key(now: datetime) -> str:
        return f"{BUDGET_KEY_PREFIX}{now:%Y-%m-%d}"

    def spent(self, now: datetime) -> int:
        return int(self._client.get(self.key(now)) or 0)

    def allows(self, tokens: int, now: datetime) -> bool:
        return self.spent(now) + tokens <= self.daily_tokens

    def spend(self, tokens: int, now: datetime) -> int:
        key = self.key(now)
        total = int(self._client.incrby(key, max(0, tokens)))
        self._client.expire(key, _KEEP_S)
        return total


def estimate_tokens(text: str) -> int:
    """About four characters a token for English and JSON (no tokenizer is downloaded; the server's count wins)."""
    return (len(text) + 3) // 4
