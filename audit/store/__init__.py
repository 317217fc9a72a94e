"""The audit store: one small protocol per log, each in its own module (audit/store/base.py names them), and two
backends chosen by `CIO_AUDIT_STORE`.
Code that writes or reads one kind of record asks for that log alone (`alert_log()`, `tool_call_log()`,
`decision_log()`): it depends on nothing else of the store, and a backend can be added one log at a time."""

from audit.store.alerts import AlertLog
from audit.store.base import AuditStore
from audit.store.decisions import DecisionLog
from audit.store.tool_calls import ToolCallLog

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


def decision_log() -> DecisionLog:
    return get_store()


def alert_log() -> AlertLog:
    return get_store()


def tool_call_log() -> ToolCallLog:
    return get_store()


def reset_store() -> None:
    """Forget the configured backend (tests switch backends and servers)."""
    global _store
    if _store is not None:
        _store.close()
    _store = None
