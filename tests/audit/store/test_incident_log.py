"""The incident log on every backend: incidents are kept once, and similarity search returns the same order."""

from datetime import timedelta

from audit.embedding import cosine, embed, features
from audit.records import Incident
from audit.store.incidents import IncidentLog
from tests.audit.records import T0


def test_every_backend_keeps_the_incident_log(audit_store):
    assert isinstance(audit_store, IncidentLog)


def _incidents() -> list[Incident]:
    rows = [
        (
            "rejection_burst",
            "40 rejections for momentum_pulse",
            "momentum_pulse",
            "BTCUSDT",
            ["CONFIDENCE_TOO_LOW"],
            40,
        ),
        (
            "rejection_burst",
            "55 rejections for momentum_pulse",
            "momentum_pulse",
            "BTCUSDT",
            ["CONFIDENCE_TOO_LOW"],
            55,
        ),
        ("rejection_burst", "12 rejections for llm-swing", "llm-swing", "ETHUSDT", ["ORDER_NOTIONAL_EXCEEDED"], 12),
        ("kill_switch", "global halted: drill", None, None, [], 1),
        ("limit_breach", "drawdown latched", None, None, ["DRAWDOWN_REDUCING"], 1),
        ("rollback", "rolled back to v3", None, None, [], 1),
    ]
    out = []
    for n, (kind, title, strategy, symbol, codes, count) in enumerate(rows):
        vector = embed(features(kind, title, strategy, symbol, codes, {"count": count}))
        out.append(
            Incident(
                f"inc-{n}", T0 + timedelta(minutes=n), kind, title, {"count": count}, strategy, symbol, None, vector
            )
        )
    return out


def test_similar_incidents_are_the_nearest_by_cosine(audit_store):
    incidents = _incidents()
    for incident in incidents:
        assert audit_store.insert_incident(incident)
    assert not audit_store.insert_incident(incidents[0])
    query = embed(
        features(
            "rejection_burst",
            "48 rejections for momentum_pulse",
            "momentum_pulse",
            "BTCUSDT",
            ["CONFIDENCE_TOO_LOW"],
            {"count": 48},
        )
    )
    found = audit_store.similar_incidents(query, limit=3)
    brute = sorted(incidents, key=lambda i: (-cosine(query, i.embedding), i.incident_id))[:3]
    assert [i.incident_id for i, _ in found] == [i.incident_id for i in brute]
    assert found[0][0].incident_id in ("inc-0", "inc-1") and found[0][1] > 0.9
    assert [round(s, 9) for _, s in found] == [round(cosine(query, i.embedding), 9) for i in brute]
    only_kills = audit_store.similar_incidents(query, limit=3, kind="kill_switch")
    assert [i.incident_id for i, _ in only_kills] == ["inc-3"]
    assert [i.incident_id for i in audit_store.recent_incidents(2)] == ["inc-5", "inc-4"]
