"""Audit-store fixtures: both backends behind the same interface. The Django backend runs on the test database
(SQLite here, PostgreSQL in `make test`'s second pass); MongoDB is a real wire server (deploy/mongo_wire.py)."""

import pytest

from audit.store.mongo import MongoAuditStore


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


@pytest.fixture(autouse=True)
def _django_test_defaults(fresh_throttles: None, fast_password_hashing: None) -> None:
    """Each test starts with no throttle counts and hashes its users' passwords fast (tests/plugins)."""
