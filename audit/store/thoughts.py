"""The thought log: what the Strategist reasoned in each cycle, kept once per `thought_id`."""

from typing import Protocol, runtime_checkable

from audit.records import Thought


@runtime_checkable
class ThoughtLog(Protocol):
    def put_thought(self, thought: Thought) -> bool:
        """Store a Strategist thought (once per `thought_id`); True when it was new."""
        ...

    def get_thought(self, thought_id: str) -> Thought | None: ...
