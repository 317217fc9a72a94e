"""`manage.py shadow_report` on each audit store backend and a real JetStream: shadow decisions from the store (a
serving gate's beside them are left out), promotions from the recorded stream; exit 2 when there is none."""

import asyncio
from datetime import UTC, datetime, timedelta
from io import StringIO

import orjson
from django.core.management import call_command

from cio_kernel.shadow import SHADOW_SIGNAL_STREAM
from tests.audit.shadow_helpers import decided, record_promotions


def _report(*args: str) -> tuple[int, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("shadow_report", *args, stdout=out, stderr=err)
    except SystemExit as exited:
        return int(exited.code or 0), err.getvalue()
    return 0, out.getvalue()


def test_the_report_compares_the_stores_shadow_decisions_with_the_recorded_promotions(
    configured_store, nats_url, settings
):
    settings.NATS_URL = nats_url
    code, message = _report("--json")
    assert code == 2 and SHADOW_SIGNAL_STREAM in message  # nothing recorded: no report that calls all a disagreement

    configured_store.insert_decisions(
        [
            decided(True, signal_id="a"),  # both promote
            decided(True, signal_id="b", confidence=0.5),  # promoted, the shadow rejects
            decided(True, signal_id="c"),  # the shadow alone would promote
            decided(False, signal_id="d", confidence=0.5),  # a serving gate's: not part of the comparison
        ]
    )
    asyncio.run(record_promotions(nats_url, "a", "b", "d"))
    until = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
    code, out = _report("--json", "--since", "10m", "--until", until)
    assert code == 0
    report = orjson.loads(out)
    assert report["shadow_decisions"] == 3 and report["promoted_signals"] == 3
    assert report["outcomes"] == {
        "shadow_promotes_serving_did_not": 1,
        "serving_promoted_shadow_rejects": 1,
        "serving_promoted_shadow_retry_safe": 0,
        "serving_promoted_shadow_never_saw": 1,  # "d": its only decision was a serving gate's
        "both_promote": 1,
        "neither_promotes": 0,
    }
    assert report["blocking_reasons"] == {"CONFIDENCE_TOO_LOW": 1}
    code, text = _report("--since", "10m", "--until", until, "--gate", "shadow-1")
    assert code == 0 and "intent_id=b" in text and "CONFIDENCE_TOO_LOW" in text
