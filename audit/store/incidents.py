"""The incident log: rejection bursts, kill switches, rollbacks and limit breaches, kept once per `incident_id`
with a vector, so that the Strategist and officers find the past incidents most like a new one."""

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from audit.records import Incident


@runtime_checkable
class IncidentLog(Protocol):
    def insert_incident(self, incident: Incident) -> bool:
        """Store an incident once per `incident_id`; True when it was new."""
        ...

    def get_incident(self, incident_id: str) -> Incident | None: ...

    def recent_incidents(self, limit: int = 50) -> list[Incident]: ...

    def similar_incidents(
        self, vector: Sequence[float], limit: int = 5, kind: str | None = None
    ) -> list[tuple[Incident, float]]:
        """The incidents nearest `vector` by cosine similarity, most similar first (ties by incident id)."""
        ...
