"""A real gate process killed: the control plane's watch (outages/watch.py, run by every `reconcile_policies` pass)
opens an incident and raises an alert within seconds, as an officer would see it in the admin and the cockpit.
tests/control_plane/test_outages.py covers the lifecycle with heartbeats written by hand and passes given their
time; this is the same path with a gate that really beats and really dies (issue 21: "killing a gate shows an
incident and an alert in the admin within seconds")."""

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import nats
import pytest

from outages import selectors, watch
from outages.models import GateWatch, IncidentCase
from tests.control_plane.helpers import AlertListener, _wait
from tests.e2e.gate_process import GateProcess
from tests.factories import write_audit_signing_key

GATE = "gate-killed"

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def _started(gate: GateProcess, nats_url: str) -> None:
    """Started, and heard beating once (its own wait, over NATS); the test itself is synchronous like the watch."""
    nc = await nats.connect(nats_url)
    try:
        await gate.start(nc)
    finally:
        await nc.close()


def test_a_killed_gate_is_an_incident_and_an_alert_within_seconds(stack: Any, redis_url: str, tmp_path: Path) -> None:
    stack.CIO_GATE_SILENT_AFTER_S = 1.0
    alerts = AlertListener(stack.NATS_URL)
    # The gate as the other e2e tests run it, signing its heartbeats so the control plane's reader verifies them.
    gate = GateProcess(
        GATE,
        stack.NATS_URL,
        redis_url,
        tmp_path / "spool",
        tmp_path / "gate.log",
        CIO_AUDIT_SIGNING_KEY_FILE=str(write_audit_signing_key(tmp_path)),
    )
    asyncio.run(_started(gate, stack.NATS_URL))
    try:

        def heard_alive() -> bool:
            watch.run_pass()
            return GateWatch.objects.filter(gate_id=GATE).exists()

        _wait(heard_alive, 30)  # the watch has heard the gate beat: it is one the control plane knows
        assert watch.run_pass() == [] and not IncidentCase.objects.exists()

        assert gate.proc is not None
        gate.proc.send_signal(signal.SIGKILL)  # no goodbye: its heartbeat key simply stops being renewed
        gate.proc.wait(10)
        killed = time.monotonic()

        def opened() -> bool:
            watch.run_pass()
            return IncidentCase.objects.exists()

        _wait(opened, 30)
        detected_after_s = time.monotonic() - killed
    finally:
        gate.kill()

    case = IncidentCase.objects.get()
    assert (case.kind, case.gate_id, case.status) == ("gate_silent", GATE, "open")
    assert case.severity == "critical"  # no gate is left deciding
    # A reader accepts a heartbeat for its 5 s life plus 5 s of clock skew, so the case opens about 10 s after the
    # last beat; how long it took is printed (a figure, not a pass mark: this machine's speed varies).
    print(f"incident opened {detected_after_s:.1f} s after the kill; recorded silent since {case.since.isoformat()}")
    assert case.detected_at > case.since
    assert [i.incident_id for i in selectors.open_incidents()] == [case.incident_id]
    _wait(lambda: any(a.title == f"gate {GATE} is silent" for a in alerts.alerts), 10)
    [alert] = [a for a in alerts.alerts if a.title == f"gate {GATE} is silent"]
    alerts.close()
    assert alert.severity == "critical" and alert.detail["incident_id"] == case.incident_id
    assert case.alert_id == alert.alert_id and case.alert_outcome == "sent"
