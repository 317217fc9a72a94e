"""The audit store: one small interface (`base.AuditStore`), two backends chosen by `CIO_AUDIT_STORE`."""

from audit.store.base import AuditStore, DecisionPage, DecisionQuery, StoreUnavailableError

__all__ = ["AuditStore", "DecisionPage", "DecisionQuery", "StoreUnavailableError", "get_store"]

_store: AuditStore | None = None


def get_store() -> AuditStore:
    """The configured backend (`django`, the default, or `mongodb` at `MONGODB_URI`), created once."""
    global _store
    if _store is None:
        from django.conf import settings

        if settings.CIO_AUDIT_STORE == "mongodb":
            from audit.store.mongo import MongoAuditStore

            _store = MongoAuditStore.from_uri(settings.MONGODB_URI)
        else:
            from audit.store.django_db import DjangoAuditStore

            _store = DjangoAuditStore()
    return _store


def reset_store() -> None:
    """Forget the configured backend (tests switch backends and servers)."""
    global _store
    if _store is not None:
        _store.close()
    _store = None
