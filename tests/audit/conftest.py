"""Audit-store fixtures: both backends behind the same interface. The Django backend runs on the test database
(SQLite here, PostgreSQL in `make test`'s second pass); MongoDB is a real wire server (deploy/mongo_wire.py)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from audit.embedding import DIMENSIONS
from audit.store.mongo import VECTOR_INDEX, MongoAuditStore
from deploy.servers import ServerProcess, free_port, mongo_server

MONGO_DB = "cio_test"


def _mongo(tmp_path: Path, persistent: bool) -> ServerProcess:
    return mongo_server(
        free_port(),
        tmp_path / "mongo" / "data.sqlite3" if persistent else None,
        tmp_path / "mongo.log",
        vector_indexes=(f"{MONGO_DB}.incidents.embedding:{DIMENSIONS}:{VECTOR_INDEX}",),
    )


@pytest.fixture
def mongo_proc(tmp_path: Path) -> Iterator[ServerProcess]:
    """In memory: fast, gone when stopped."""
    proc = _mongo(tmp_path, persistent=False).start(timeout_s=30)
    yield proc
    proc.stop()


@pytest.fixture
def persistent_mongo_proc(tmp_path: Path) -> Iterator[ServerProcess]:
    """Kept on disk, so the server can be stopped and started again with its data (an outage, not a wipe)."""
    proc = _mongo(tmp_path, persistent=True).start(timeout_s=30)
    yield proc
    proc.stop()


@pytest.fixture
def mongo_url(mongo_proc: ServerProcess) -> str:
    return f"mongodb://127.0.0.1:{mongo_proc.port}/{MONGO_DB}?directConnection=true"


@pytest.fixture(params=["django", "mongodb"])
def audit_store(request: pytest.FixtureRequest, transactional_db: None):
    """Each backend; the database is set up for both (the control plane's records live there either way)."""
    if request.param == "django":
        from audit.store.django_db import DjangoAuditStore

        yield DjangoAuditStore()
        return
    store = MongoAuditStore.from_uri(request.getfixturevalue("mongo_url"))
    store.ensure_schema()
    yield store
    store.close()


# The control plane's users, API clients and live stack, for the browsing tests.
from tests.control_plane.conftest import (  # noqa: E402, F401
    active_v1,
    api,
    fast_password_hashing,
    fresh_throttles,
    stack,
    users,
)


@pytest.fixture
def configured_store(audit_store, monkeypatch):
    """The backend under test as the one the control plane is configured with (`audit.store.get_store`)."""
    import audit.store

    monkeypatch.setattr(audit.store, "_store", audit_store)
    return audit_store


@pytest.fixture
def tamper(audit_store, request):
    """Edits the backend under test below the store interface (tests/audit/tampering.py)."""
    from tests.audit.tampering import Tamper

    mongo_url = request.getfixturevalue("mongo_url") if audit_store.name == "mongodb" else None
    return Tamper(audit_store, mongo_url)
