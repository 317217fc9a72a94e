"""The canary's judgement (pure) and its own alarm: direct SMTP and a webhook against real local servers, one
alarm per problem per re-alert window, one recovery message, and an exit code that says when no alarm left."""

from datetime import UTC, datetime

import orjson
import pytest

from canary.alarm import Alarm, AlarmSettings
from canary.checks import Expectations, Problem, Seen, evaluate, status_line
from cio_kernel.contracts.heartbeat import GateCounters, GateHeartbeat
from deploy.mail_catcher import MailCatcher
from tests.alerting.receivers import Receiver

NOW = 1_800_000_000.0


def beat(age_s: float = 0.5, version: int | None = 3, state: str | None = "active") -> GateHeartbeat:
    return GateHeartbeat(
        gate_id="g1",
        ts=datetime.fromtimestamp(NOW - age_s, UTC),
        policy_version=version,
        trading_state=state,
        uptime_s=10,
        counters=GateCounters(),
    )


def keys(seen: Seen, expect: Expectations | None = None) -> list[str]:
    return [p.key for p in evaluate(seen, expect or Expectations(), NOW)]


def test_what_counts_as_healthy():
    assert keys(Seen(beat(), None, 200, None)) == []
    assert keys(Seen(None, "no responders", 200, None)) == ["gate_unreachable"]
    assert keys(Seen(beat(age_s=6), None, 200, None)) == ["heartbeat_stale"]
    assert keys(Seen(beat(version=None), None, 200, None)) == ["no_policy"]
    assert keys(Seen(beat(version=2), None, 200, None), Expectations(min_policy_version=3)) == ["policy_version"]
    assert keys(Seen(beat(state="halted"), None, 200, None), Expectations(trading_state="active")) == ["trading_state"]
    assert keys(Seen(beat(), None, 503, None)) == ["web_unhealthy"]
    assert keys(Seen(beat(), None, None, "unreachable")) == ["web_unhealthy"]
    assert keys(Seen(beat(), None, None, None), Expectations(check_web=False)) == []


def test_the_status_line_is_one_line():
    assert status_line(Seen(beat(), None, 200, None), [], NOW) == "CANARY OK gate=g1 v3 active age=0.5s web=200"
    line = status_line(Seen(None, "timeout", None, "x"), [Problem("gate_unreachable", "gone")], NOW, "alarmed: email")
    assert line == "CANARY FAIL gate_unreachable: gone (alarmed: email)" and "\n" not in line


@pytest.fixture
def servers():
    smtp, hook = MailCatcher().start(), Receiver().start()
    yield smtp, hook
    smtp.stop()
    hook.stop()


def alarm(servers, tmp_path, clock, **overrides) -> Alarm:
    smtp, hook = servers
    values = {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "mail_to": ("ops@example.test",),
        "webhook_url": f"{hook.url}/hook/s3cr3t-token",
        "state_file": tmp_path / "state.json",
        "realert_s": 600.0,
        "timeout_s": 2.0,
    }
    values.update(overrides)
    return Alarm(AlarmSettings(**values), clock=lambda: clock[0])


def test_each_problem_alarms_once_per_window_then_recovery_once(servers, tmp_path):
    smtp, hook = servers
    clock = [NOW]
    canary = alarm(servers, tmp_path, clock)
    down = [Problem("gate_unreachable", "no gate answered")]
    assert canary.handle(down, "CANARY FAIL ...") == (["email", "webhook"], [])
    clock[0] += 60
    assert canary.handle(down, "CANARY FAIL ...") == ([], [])  # a long outage does not spam
    clock[0] += 60
    both = [*down, Problem("web_unhealthy", "HTTP 503")]
    assert canary.handle(both, "CANARY FAIL ...") == (["email", "webhook"], [])  # a new problem alarms
    clock[0] += 600
    assert canary.handle(both, "CANARY FAIL ...")[0] == ["email", "webhook"]  # the window passed: again
    assert canary.handle([], "CANARY OK ...")[0] == ["email", "webhook"]
    assert canary.handle([], "CANARY OK ...") == ([], [])
    assert [s.split(":")[0] for s in smtp.subjects()] == ["CANARY ALARM"] * 3 + ["CANARY RECOVERED"]
    first = orjson.loads(hook.requests[0][2])
    assert first["source"] == "petrosa-cio-canary" and "no gate answered" in first["text"]


def test_the_state_survives_between_cron_runs(servers, tmp_path):
    clock = [NOW]
    down = [Problem("gate_unreachable", "no gate answered")]
    assert alarm(servers, tmp_path, clock).handle(down, "x")[0]
    clock[0] += 30
    assert alarm(servers, tmp_path, clock).handle(down, "x") == ([], [])  # a new process, the same file


def test_a_failing_channel_is_reported_and_the_other_still_sends(servers, tmp_path):
    _, hook = servers
    hook.stop()
    sent, failed = alarm(servers, tmp_path, [NOW]).handle([Problem("gate_unreachable", "gone")], "x")
    assert sent == ["email"] and len(failed) == 1 and failed[0].startswith("webhook")
    assert "refused" in failed[0].lower()  # why it failed, for the status line
