"""`make up`'s supervisor: the demo's intents are approved and rejected with reasons; every line is timestamped; the
banner shows no password; `source .cio/env.sh` is all a shell needs to run the commands against the stack; Ctrl-C
stops every child."""

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import nats
import pytest

from deploy.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")
pytestmark = pytest.mark.e2e


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_stack_runs_the_demo_and_stops_cleanly_on_ctrl_c(tmp_path):
    ports = {
        "--nats-port": free_port(),
        "--redis-port": free_port(),
        "--nats-monitor-port": free_port(),
        "--web-port": free_port(),
    }
    ports["--smtp-port"] = free_port()
    ports["--tradeengine-port"] = free_port()
    ports["--gate-health-port"] = free_port()
    ports["--grafana-port"] = free_port()
    ports["--otlp-port"] = free_port()
    argv = [sys.executable, "-m", "deploy.devstack", "--state-dir", str(tmp_path / "state"), "--demo-rate", "10"]
    argv += ["--gate-restart-after", "3", "--canary-every", "1"]
    for flag, port in ports.items():
        argv += [flag, str(port)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        approved = any("[ demo] APPROVED" in entry for entry in lines)
        rejected = any("[ demo] REJECTED" in entry and "_" in entry.split("REJECTED")[1] for entry in lines)
        # The demo portfolio is concentrated in BTC and the market stand-in starts ETH volatile: the listener
        # triggers a cycle at once, and the worker's rule brain proposes.
        strategist = any(
            "[ work]" in entry and "Strategist cycle" in entry and "proposed v" in entry for entry in lines
        )
        if approved and rejected and strategist and any("VAL_ERR" in entry for entry in lines):
            break
    gates = _gates_via_rest(ports["--web-port"], tmp_path / "state" / "local-credentials.json")
    cockpit = _cockpit_after_login(ports["--web-port"], tmp_path / "state" / "local-credentials.json")
    mcp_tools = _mcp_tools(ports["--web-port"], tmp_path / "state" / "local-credentials.json")
    anonymous = _anonymous_nats_refused(ports["--nats-port"])
    gate_metrics = _scrape(ports["--gate-health-port"], "/metrics")
    web_metrics = _scrape(ports["--web-port"], "/metrics")
    gate_ready = _scrape(ports["--gate-health-port"], "/healthz/ready")
    probe = _respelling_probe(ports["--nats-port"], ports["--web-port"], tmp_path / "state")
    env_file = tmp_path / "state" / "env.sh"
    verified = _from_a_shell(env_file, "manage.py audit_verify --settle 20 --live-heads")
    canary = _from_a_shell(env_file, "-m canary --timeout 5")
    # Stop the gate: the canary's alarm reaches the local mail catcher, the demo bot goes conservative; the
    # supervisor starts the gate again and both recover.
    os.kill(int((tmp_path / "state" / "gate.pid").read_text()), signal.SIGTERM)
    outage = (
        "CANARY ALARM",
        "bot: CONSERVATIVE MODE",
        "[stack] gate started again",
        "bot: RECOVERED",
        "CANARY RECOVERED",
    )
    seen_at = len(lines)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(any(m in e for e in lines[seen_at:]) for m in outage):
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    output = "".join(lines) + rest
    assert proc.returncode == 0, output
    assert "Petrosa CIO local stack is up" in output
    # What an officer lands on after signing in: every panel reads, the gate beats, the demo's decisions show.
    assert {name: panel["error"] for name, panel in cockpit["panels"].items() if not panel["ok"]} == {}
    assert [g["policy_version"] for g in cockpit["panels"]["gates"]["data"]["gates"]] == [1]
    assert cockpit["panels"]["trading"]["data"] and cockpit["panels"]["decisions"]["data"]
    assert "seeded policy v1" in output
    assert f"http://127.0.0.1:{ports['--web-port']}/admin/" in output
    assert "officer1 (risk_officer)" in output and "officer2 (risk_officer)" in output
    # Passwords and tokens stay in the credentials files: not in the banner, not in any line.
    services = json.loads((tmp_path / "state" / "service-credentials.json").read_text())
    logins = json.loads((tmp_path / "state" / "local-credentials.json").read_text())
    secrets = [*services.values(), *(v for entry in logins.values() for k, v in entry.items() if k != "role")]
    assert secrets and not [secret for secret in secrets if secret in output]
    # Every line carries a timestamp: the stack's own, each child's (stamped by the child or, for NATS and
    # Valkey, by the supervisor's relay: cio_kernel/log_format.py).
    unstamped = [line for line in output.splitlines() if line and not STAMP.match(line)]
    assert not unstamped, unstamped[:20]
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    assert f"source {env_file}" in output
    assert canary.returncode == 0 and "CANARY OK" in canary.stdout, canary.stdout + canary.stderr
    assert "[ demo] APPROVED" in output and "-> signals.trading." in output
    # Opening intents too: the seeded policy leaves out the daily loss limits today's engine cannot feed.
    assert any("[ demo] APPROVED" in line and " buy " in line for line in output.splitlines()), output[-4000:]
    assert "DAILY_PNL_UNKNOWN" not in output
    assert "SYMBOL_DENIED" in output or "CONFIDENCE_TOO_LOW" in output
    assert "rules brain): proposed v2" in output  # the first proposal after the seeded v1
    after = "".join(lines[seen_at:])
    for marker in outage:
        assert marker in after, f"{marker!r} missing after the gate stopped:\n{after[-4000:]}"
    assert "[ mail] mail to oncall@localhost: CANARY ALARM" in after  # through the local SMTP server
    assert after.index("bot: CONSERVATIVE MODE") < after.index("bot: RECOVERED")
    for name in (
        "mkt",
        "demo",
        "snap",
        "bot",
        "oob",
        "alert",
        "strat",
        "beat",
        "work",
        "ingest",
        "recon",
        "web",
        "gate",
        "alrt",
        "mail",
        "redis",
        "nats",
    ):
        assert f"[stack] {name} stopped (exit 0)" in output, output
    assert "audit outbox flushed" in output
    assert not any(_port_open(port) for port in ports.values())
    assert [(g["gate_id"], g["policy_version"]) for g in gates] == [("local-gate-1", 1)]
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "audit trail intact: 1 chains" in verified.stdout and " vouched for by signed checkpoints" in verified.stdout
    assert anonymous, "the local NATS runs with the shipped permissions: no identity, no connection"
    # The gate's health port and the web's metrics, as Kubernetes and Prometheus would call them.
    assert gate_ready[0] == 200 and json.loads(gate_ready[1])["status"] == "ok", gate_ready
    approved = [
        line for line in gate_metrics[1].splitlines() if line.startswith('cio_gate_decisions_total{decision="APPROVED"')
    ]
    assert gate_metrics[0] == 200 and approved and float(approved[0].rsplit(" ", 1)[1]) >= 1, gate_metrics[1][:2000]
    assert web_metrics[0] == 200 and "cio_policy_active_version " in web_metrics[1], web_metrics[1][:2000]
    assert "propose_policy_change" in mcp_tools and "get_trading_config" in mcp_tools
    for label, (decision, codes) in probe.items():  # no respelling walks around the seeded policy
        assert decision != "APPROVED" and codes, (label, decision, codes)
    assert probe["symbol with a line break, deny-listed"][1] == ["VAL_ERR"]
    assert probe["display spelling, held tighter"][1] == ["CONFIDENCE_TOO_LOW"]
    assert probe["the shared identity speaking for momentum_pulse"][1] == ["IDENTITY_UNVERIFIED"]
    assert probe["a strategy nobody listed"][1] == ["STRATEGY_UNLISTED"]
    assert probe["halted by the kill switch under another spelling"][1] == ["TRADING_HALTED"]
    # The book reaches the CIO through the snapshot bridge, which reads the stand-in's GET /state.
    assert "[ snap]" in output and "first snapshot published: equity 250000.00 USD, 3 positions" in output
    assert f"Grafana http://127.0.0.1:{ports['--grafana-port']}" in output
    assert "alert stand-ins: Grafana annotations on" in output
    assert oct((tmp_path / "state").stat().st_mode & 0o777) == "0o700"


def _from_a_shell(env_file: Path, python_args: str) -> subprocess.CompletedProcess[str]:
    """`python <python_args>` on the running stack as an operator runs it: `source .cio/env.sh`, then the command,
    nothing else (`manage.py audit_verify` with the `audit` identity, the gates' public key and the control plane's
    Redis for the live heads; the canary with its own identity). The demo goes on meanwhile."""
    argv = ["bash", "-c", f"source {env_file} && exec {sys.executable} {python_args}"]
    return subprocess.run(argv, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120)


def _mcp_tools(port: int, credentials: Path) -> list[str]:
    """What an MCP client with the agent's token sees at /mcp on the running stack."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    token = json.loads(credentials.read_text())["agent"]["token"]

    async def listing() -> list[str]:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
            Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as client,
        ):
            return [tool.name for tool in (await client.list_tools()).tools]

    return asyncio.run(listing())


def _respelling_probe(nats_port: int, web_port: int, state: Path) -> dict[str, tuple[str, list[str]]]:
    """An adversary holding the fleet's shared `strategy` credentials on the running stack (and an officer's
    kill switch under a respelled id): what the gate decides for each respelling of a key the policy holds."""
    from datetime import UTC, datetime

    passwords = json.loads((state / "service-credentials.json").read_text())
    officer = json.loads((state / "local-credentials.json").read_text())["officer1"]["token"]
    halt = urllib.request.Request(
        f"http://127.0.0.1:{web_port}/api/trading-state",
        data=json.dumps(
            {"scope": "strategy", "key": "ICEBERG-order-detector", "state": "halted", "reason": "probe"}
        ).encode(),
        headers={"Authorization": f"Token {officer}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(halt, timeout=10) as response:
        assert response.status == 201
        version = json.loads(response.read())["data"]["version"]
    # The gate loads the new version on cio.strategist.update; its heartbeat says when it has.
    gates = _gates_via_rest(web_port, state / "local-credentials.json", lambda gs: gs[0]["policy_version"] >= version)
    assert gates[0]["policy_version"] >= version

    def intent(strategy_id: str, symbol: str, **extra: object) -> dict[str, object]:
        return {
            "strategy_id": strategy_id, "symbol": symbol, "action": "buy", "confidence": 0.8, "price": 100.0,
            "quantity": 1.0, "current_price": 100.0, "source": "probe", "strategy": "probe", "stop_loss": 99.0,
            "timestamp": datetime.now(UTC).isoformat(), **extra,
        }  # fmt: skip

    cases = {
        "symbol with a line break, deny-listed": ("intent.trading.LUNAUSDT", intent("momentum-1", "LUNAUSDT\n")),
        "lower-case symbol under a reducing state": ("intent.trading.dogeusdt", intent("momentum-1", "dogeusdt")),
        "display spelling, held tighter": (
            "cio.intent.trading.LLM_Swing",
            intent(
                "LLM Swing",
                "ETHUSDT",
                confidence=0.6,
                quantity=0.01,
                price=3400.0,
                current_price=3400.0,
                stop_loss=3350.0,
            ),
        ),
        "look-alike of a listed strategy": ("cio.nurse.audit", intent("mоmentum-1", "BTCUSDT")),
        "the shared identity speaking for momentum_pulse": (
            "cio.intent.trading.Momentum_Pulse",
            # Not SOLUSDT: the real momentum_pulse (deploy/demo_bot.py) buys it every few seconds, and the dedupe
            # window (strategy, symbol, action) would add DUPLICATE_WINDOW whenever one was just promoted.
            intent("Momentum Pulse", "ETHUSDT", quantity=0.01, price=3400.0, current_price=3400.0, stop_loss=3350.0),
        ),
        "a strategy nobody listed": ("cio.intent.trading.shadow-bot", intent("shadow-bot", "SOLUSDT")),
        "halted by the kill switch under another spelling": (
            "cio.intent.trading.Iceberg_Order_Detector",
            intent("Iceberg Order Detector", "SOLUSDT"),
        ),
    }

    async def run() -> dict[str, tuple[str, list[str]]]:
        url = f"nats://strategy:{passwords['nats:strategy']}@127.0.0.1:{nats_port}"
        client = await nats.connect(url, inbox_prefix="_INBOX.strategy")
        found = {}
        try:
            for label, (subject, body) in cases.items():
                reply = await client.request(subject, json.dumps(body).encode(), timeout=5)
                data = json.loads(reply.data)["data"]
                found[label] = (data["decision"], [r["code"] for r in data["reasons"]])
        finally:
            await client.close()
        return found

    return asyncio.run(run())


def _scrape(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _anonymous_nats_refused(port: int) -> bool:
    async def attempt() -> bool:
        try:
            client = await nats.connect(f"nats://127.0.0.1:{port}", allow_reconnect=False, max_reconnect_attempts=1)
        except Exception as exc:
            return "authorization" in str(exc).lower()
        await client.close()
        return False

    return asyncio.run(attempt())


def _cockpit_after_login(port: int, credentials: Path) -> dict:
    """The cockpit's snapshot as officer1 gets it after signing in through the admin's login form."""
    import http.cookiejar

    login = json.loads(credentials.read_text())["officer1"]
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    base = f"http://127.0.0.1:{port}"
    with opener.open(f"{base}/admin/login/", timeout=10) as response:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.read().decode()).group(1)
    form = {"csrfmiddlewaretoken": token, "username": "officer1", "password": login["password"]}
    with opener.open(f"{base}/admin/login/", urllib.parse.urlencode(form).encode(), timeout=10) as response:
        assert urllib.parse.urlparse(response.url).path == "/", response.url  # signing in lands on the cockpit
    with opener.open(f"{base}/cockpit/snapshot", timeout=10) as response:
        return json.loads(response.read())


def _gates_via_rest(port: int, credentials: Path, ready: Callable[[list[dict]], bool] = lambda gs: True) -> list[dict]:
    """What a viewer sees at /api/gate on the running stack (the gate's heartbeat, through Redis), once a gate
    reports and `ready` holds for what they report."""
    token = json.loads(credentials.read_text())["viewer"]["token"]
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/gate", headers={"Authorization": f"Token {token}"})
    deadline = time.monotonic() + 20
    while True:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = json.loads(response.read())
        gates = body["data"]["gates"]
        if (gates and ready(gates)) or time.monotonic() > deadline:
            return gates
        time.sleep(0.2)  # the stack's processes are working; poll their API until the gates report it
