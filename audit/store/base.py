"""The audit store: one log per kind of record (audit/store/decisions.py, checkpoints.py, thoughts.py,
incidents.py, alerts.py, tool_calls.py), each a small protocol that code writing that kind depends on alone, and
`AuditStore`, all of them in one backend (what `audit.store.get_store` returns).

Records go in once and are never changed: no log has an update, and the one removal is retention's
(`AuditTrail.prune_chain`, which `audit.retention` calls only for records a signed checkpoint old enough vouches for,
after verifying them). Below the interface the Django backend's database refuses both (docs/audit.md)."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from audit.store.alerts import AlertLog
from audit.store.checkpoints import AuditTrail
from audit.store.incidents import IncidentLog
from audit.store.thoughts import ThoughtLog
from audit.store.tool_calls import ToolCallLog


class StoreUnavailableError(Exception):
    """The store could not be reached or did not take the write; retrying later may succeed."""

    retry_may_help = True


@contextmanager
def unavailable_on(
    failure: type[Exception], refused: str, after_failure: Callable[[], None] | None = None
) -> Iterator[None]:
    """A backend's own `failure` inside becomes `StoreUnavailableError("<refused>: <error>")` (the ingest and the
    other writers retry on it), after `after_failure` (a backend's chance to drop a connection that may be dead)."""
    try:
        yield
    except failure as exc:
        if after_failure is not None:
            after_failure()
        raise StoreUnavailableError(f"{refused}: {exc!r}") from exc


def insert_once(
    write: Callable[[], object],
    *,
    duplicate: type[Exception],
    failure: type[Exception],
    refused: str,
    after_failure: Callable[[], None] | None = None,
) -> bool:
    """Exactly once by key, for every backend: `write` inserts one record under its unique key; True when it was
    new, False when the key was already stored (a redelivery or a second writer, not an error: `duplicate` is the
    backend's unique-key error); any other `failure` of the backend is `StoreUnavailableError`."""
    with unavailable_on(failure, refused, after_failure):
        try:
            write()
        except duplicate:
            return False
    return True


class AuditStore(AuditTrail, ThoughtLog, IncidentLog, AlertLog, ToolCallLog, Protocol):
    """Every log in one backend, with the backend's own life cycle."""

    name: str

    def ensure_schema(self) -> None:
        """Create collections/indexes if missing (idempotent; run at start-up)."""
        ...

    def ensure_search_index(self) -> str:
        """Make sure similar-incident search has its index (idempotent; `prepare_release` runs it); says what it
        did, and raises StoreUnavailableError when the index is neither there nor creatable."""
        ...

    def release_thread(self) -> None:
        """Let go of what the calling thread holds (the Django backend's per-thread connection)."""
        ...

    def close(self) -> None: ...
