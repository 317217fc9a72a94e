"""The interface both brains implement, and how a brain says it could not answer (so the cycle falls back)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from strategist.changes import Change
from strategist.context import CycleContext

# Checks a patch before the brain settles on it; returns the problems (empty: a valid policy). The LLM brain uses
# it to ask again with the problems spelled out.
PatchCheck = Callable[[list[Change]], list[str]]


@dataclass(frozen=True, slots=True)
class Thinking:
    changes: list[Change]
    rationale: str
    model: str
    raw_output: str
    prompt_hash: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 1


class BrainUnavailableError(Exception):
    """The brain gave no usable answer. `reason` is one of `REASONS`; what was spent on it travels along."""

    REASONS = ("not_configured", "budget", "timeout", "http_error", "refusal", "invalid_output")

    def __init__(
        self,
        reason: str,
        detail: str,
        *,
        raw_output: str = "",
        prompt_hash: str | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        attempts: int = 0,
    ) -> None:
        assert reason in self.REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.raw_output = raw_output
        self.prompt_hash = prompt_hash
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.attempts = attempts


class Brain(Protocol):
    name: str
    model: str

    def think(self, context: CycleContext, check: PatchCheck) -> Thinking: ...
