"""Shadow decisions in the admin: marked and filtered in the decisions list and page (each backend), and the
shadow report page, the command's report over a chosen window, for whoever may read the audit trail; over a real
JetStream holding the serving CIO's recorded promotions, with an error panel, never a report, while there is none."""

import asyncio
from datetime import UTC, datetime, timedelta
from io import StringIO

import orjson
import pytest
from django.core.management import call_command
from django.test import Client

from audit.shadow_report import DISAGREEMENTS, SERVING_ONLY, SHADOW_ONLY
from cio_kernel.shadow import SHADOW_SIGNAL_STREAM
from tests.audit.records import chain_of
from tests.audit.shadow_helpers import decided, record_promotions

REPORT = "/admin/audit/decision/shadow/"


def test_the_admin_and_rest_mark_shadow_decisions_and_filter_serving_from_shadow(configured_store, users, api):
    serving, shadow = chain_of(6), chain_of(4, gate_id="gate-s", start=6, shadow=True)
    configured_store.insert_decisions(serving + shadow)
    admin = Client()
    admin.force_login(users["viewer"])
    every = admin.get("/admin/audit/decision/")
    assert len(every.context["records"]) == 10 and every.content.decode().count('class="shadow-marker"') == 4
    only_shadow = admin.get("/admin/audit/decision/?shadow=true")
    assert {r.decision_id for r in only_shadow.context["records"]} == {r.decision_id for r in shadow}
    only_serving = admin.get("/admin/audit/decision/?shadow=false&decision=REJECTED")
    assert {r.decision_id for r in only_serving.context["records"]} == {
        r.decision_id for r in serving if r.decision == "REJECTED"
    }
    assert 'class="shadow-marker"' not in only_serving.content.decode()
    page = admin.get(f"/admin/audit/decision/{shadow[0].decision_id}/").content.decode()
    assert "SHADOW decision" in page and "never promoted" in page
    assert "SHADOW decision" not in admin.get(f"/admin/audit/decision/{serving[0].decision_id}/").content.decode()
    assert "shadow: must be true" in admin.get("/admin/audit/decision/?shadow=maybe").content.decode()
    listed = api["viewer"].get("/api/audit?shadow=true").json()["data"]["decisions"]
    assert {d["decision_id"] for d in listed} == {r.decision_id for r in shadow} and all(d["shadow"] for d in listed)
    every_rest = api["viewer"].get("/api/audit").json()["data"]["decisions"]
    assert sum(d["shadow"] for d in every_rest) == 4 and len(every_rest) == 10


@pytest.mark.parametrize("audit_store", ["django"], indirect=True)  # the store's shadow filter: both, above
def test_the_shadow_report_page_shows_the_commands_report_to_audit_readers_only(
    configured_store, users, nats_url, settings
):
    settings.NATS_URL = nats_url
    officer, outsider = Client(), Client()
    officer.force_login(users["officer1"])
    outsider.force_login(users["nobody"])  # staff, in no role: may not read the audit trail

    nothing = officer.get(REPORT)  # no promotions recorded yet: an error panel, not "all agree"
    assert nothing.status_code == 200 and nothing.context["report"] is None
    body = nothing.content.decode()
    assert 'id="shadow-report-error"' in body and SHADOW_SIGNAL_STREAM in body and "shadow-outcomes" not in body

    earlier = datetime.now(UTC) - timedelta(hours=3)
    configured_store.insert_decisions(
        [
            decided(True, signal_id="a"),  # both promote
            decided(True, signal_id="b", confidence=0.5),  # promoted, the shadow rejects
            decided(True, signal_id="c"),  # the shadow alone would promote: the dangerous one
            decided(False, signal_id="d", confidence=0.5),  # a serving gate's: not part of the comparison
            decided(True, at=earlier, signal_id="e"),  # three hours ago: in the last 24 h, not in the last hour
        ]
    )
    asyncio.run(record_promotions(nats_url, "a", "b", "d"))

    hour = officer.get(REPORT, {"window": "1h"})
    assert hour.status_code == 200 and hour.context["error"] is None
    report = hour.context["report"]
    assert report.shadow_decisions == 3 and dict(report.reason_counts()) == {"CONFIDENCE_TOO_LOW": 1}
    assert [(name, n) for name, _, n in report.outcome_counts()] == [
        (SHADOW_ONLY, 1),  # first on the page: where the new gates are looser
        (SERVING_ONLY, 1),
        ("serving_promoted_shadow_retry_safe", 0),
        ("serving_promoted_shadow_never_saw", 1),  # "d": its only decision was a serving gate's
        ("both_promote", 1),
        ("neither_promotes", 0),
    ]
    page = hour.content.decode()
    outcomes = page[page.index('id="shadow-outcomes"') :]
    assert outcomes.index(SHADOW_ONLY) < outcomes.index(SERVING_ONLY) < outcomes.index("both_promote")
    assert page.count('class="shadow-disagreement"') == 3
    assert "CONFIDENCE_TOO_LOW" in page[page.index('id="shadow-blocking-reasons"') :]
    assert "momentum" in page[page.index('id="shadow-by-strategy"') :]
    examples = page[page.index('id="shadow-examples"') :]
    dangerous = report.examples[0]
    assert dangerous.outcome == SHADOW_ONLY and dangerous.intent_id == "c"
    assert f"/admin/audit/decision/{dangerous.decision_id}/" in examples
    assert [e.outcome for e in report.examples] == sorted((e.outcome for e in report.examples), key=DISAGREEMENTS.index)

    # The page and the command make one report: the command's JSON over the same window says the same.
    out = StringIO()
    call_command("shadow_report", "--json", "--since", "1h", stdout=out)
    command = orjson.loads(out.getvalue())
    assert (
        command["outcomes"] == report.as_dict()["outcomes"]
        and command["by_strategy"] == report.as_dict()["by_strategy"]
    )

    day = officer.get(REPORT, {"window": "24h"}).context["report"]
    assert day.shadow_decisions == 4 and day.outcomes[SHADOW_ONLY] == 2  # "e" too: the shadow alone approved it
    refused = officer.get(REPORT, {"window": "1y"})
    assert refused.context["report"] is None and "window: must be one of 1h, 24h, 7d" in refused.content.decode()

    denied = outsider.get(REPORT, {"window": "1h"})
    assert denied.status_code == 403 and b"CONFIDENCE_TOO_LOW" not in denied.content
    assert Client().get(REPORT).status_code == 302  # not signed in: the admin's login page
