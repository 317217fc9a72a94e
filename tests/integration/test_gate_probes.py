"""The gate's probes and metrics (gate/runtime/probes.py) over real HTTP, on a gate deciding real intents over real
NATS and Redis: readiness follows the policy and the NATS connection, liveness fails for a stuck intent (the
heartbeats' test provokes it the same way), and every answer is counted by outcome and reason."""

import time
from datetime import UTC, datetime

import httpx
from prometheus_client.parser import text_string_to_metric_families

from cio_kernel.reason_codes import ReasonCode as C
from deploy.servers import free_port
from deploy.workloads import workload
from tests.factories import live_intent_body, make_spec
from tests.integration.helpers import ManualClock, activate, request, wait_for_policy, wait_until

# The paths the manifests probe and scrape (deploy/workloads.py, the one table): what the gate must serve.
_GATE = workload("gate")
assert _GATE.readiness and _GATE.liveness and _GATE.metrics
READY, LIVE, METRICS = _GATE.readiness.path, _GATE.liveness.path, _GATE.metrics.path


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_probes_follow_policy_nats_and_stuck_intents_and_decisions_are_counted(make_gate, redis, nc, nats_proc):
    clock = ManualClock(wall=time.time())
    port = free_port()
    # A 1 s stuck threshold: a loop blocked for 2 s is surely past it, a busy test machine surely not.
    gate = await make_gate(clock=clock, run_loops=False, gate_health_port=port, stuck_after_s=1.0)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        ready = await http.get(READY)
        assert (ready.status_code, ready.json()["reason"]) == (503, "no policy")
        assert (await http.get(LIVE)).status_code == 200

        await activate(redis, nc, make_spec(min_confidence=0.5, max_order_notional_usd=10_000.0), 3)
        await wait_for_policy(gate, 3)
        assert (await http.get(READY)).json() == {"status": "ok", "reason": "ok"}

        stamp = datetime.fromtimestamp(clock.time(), UTC).isoformat()
        answers = [(await request(nc, live_intent_body(signal_id=f"s-{i}", timestamp=stamp)))[0].data for i in range(2)]
        answers.append((await request(nc, live_intent_body(signal_id="s-0", timestamp=stamp)))[0].data)
        answers.append((await request(nc, b"not json"))[0].data)
        assert [a.decision for a in answers] == ["APPROVED", "APPROVED", "REJECTED", "REJECTED"]
        assert [r.code for r in answers[2].reasons] == [C.DUPLICATE_INTENT]

        scraped = await http.get(METRICS)
        assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
        found = samples(scraped.text)
        decisions = {k[1]: v for k, v in found.items() if k[0] == "cio_gate_decisions_total"}
        assert decisions == {
            (("decision", "APPROVED"), ("reason", "")): 2,
            (("decision", "REJECTED"), ("reason", "DUPLICATE_INTENT")): 1,
            (("decision", "REJECTED"), ("reason", "VAL_ERR")): 1,
        }
        assert found[("cio_gate_decision_latency_seconds_count", ())] == 4
        assert found[("cio_gate_decision_latency_seconds_bucket", (("le", "+Inf"),))] == 4
        assert found[("cio_gate_intents_received_total", ())] == 4
        assert found[("cio_gate_invalid_total", ())] == 1
        assert found[("cio_gate_policy_version", ())] == 3
        assert found[("cio_gate_ready", ())] == 1 and found[("cio_gate_nats_connected", ())] == 1

        # An intent that never finishes: not stuck just under the heartbeats' threshold, stuck just over it.
        gate.intake.inflight_since = clock.monotonic()
        clock.advance(gate.settings.stuck_after_s - 0.1)
        assert (await http.get(LIVE)).status_code == 200
        clock.advance(0.2)
        stuck = await http.get(LIVE)
        assert (stuck.status_code, stuck.json()["reason"]) == (503, "an intent is stuck in processing")
        gate.intake.inflight_since = None
        assert (await http.get(LIVE)).status_code == 200

        # The loop blocked (by this test: gate and test share it) for longer than the threshold: the next probe
        # answered after it is a failure; once the loop ticks on time again, liveness is back.
        time.sleep(2.0)  # noqa: ASYNC251 (blocking the loop is the point)
        blocked = await http.get(LIVE)
        assert blocked.status_code == 503 and blocked.json()["reason"].startswith("the event loop was blocked for")

        async def live_again() -> bool:
            return (await http.get(LIVE)).status_code == 200

        await wait_until(live_again, what="liveness after the loop ran on time again")

        nats_proc.stop()
        await wait_until(lambda: gate.links.connected() is None, what="the gate noticing NATS is gone")
        lost = await http.get(READY)
        assert (lost.status_code, lost.json()["reason"]) == (503, "NATS disconnected")
        assert (await http.get(LIVE)).status_code == 200  # a restart would not bring NATS back
        nats_proc.start()
        await wait_until(lambda: gate.links.connected() is not None, 10, "the gate reconnecting")
        assert (await http.get(READY)).status_code == 200

        # Anything but GET on a known path is refused; unknown paths are not found.
        assert (await http.post(READY)).status_code == 405
        assert (await http.get("/admin")).status_code == 404
