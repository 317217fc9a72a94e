"""`make up`: the whole local stack in the foreground, with prefixed logs, stopped cleanly on Ctrl-C/SIGTERM.

Children: NATS (JetStream) and Valkey from pip wheels, the gate (`python -m gate`), the control plane (uvicorn),
the trade-engine stand-in with the snapshot bridge reading its state API (`python -m bridges.engine_state`), and
the demo fleet. First run: migrations, officer accounts and the example policy as v1. State
lives under `.cio/` (override with --state-dir), readable only by its owner. Ports stay away from the standard
ones (4222, 6379). NATS and Valkey run with the permissions of `deploy/access.py`: every child connects with
its own identity (passwords generated on first run into the state folder, printed in the banner).
"""

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cio_kernel import audit_checkpoint
from cio_kernel.log_format import configure_logging, message_of, relay_line, unstamped
from cio_kernel.policy.signing import PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, PolicySigner
from deploy import access
from deploy.servers import die_with_parent, nats_server_binary, valkey_server_binary, wait_for_port
from deploy.workloads import CELERY_WORKER

ROOT = Path(__file__).resolve().parents[1]
# Every symbol the demo book (deploy/fake_tradeengine.py) and the demo fleet trade: the bridge refuses a round
# whose exposure these do not account for.
SNAPSHOT_SYMBOLS = "BTCUSDT,ETHUSDT,SOLUSDT,DOGEUSDT"
# The Celery worker as deployed (deploy/workloads.py says why these options).
WORKER_ARGS = list(CELERY_WORKER)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    port: int | None = None
    restart_after_s: float | None = None  # exits are survived: started again after this long (the gate)
    pid_file: Path | None = None
    proc: asyncio.subprocess.Process | None = None
    pump: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only the supervisor, which stops children in order
            preexec_fn=die_with_parent,
        )
        self.pump = asyncio.create_task(self._pump())
        if self.pid_file is not None:
            self.pid_file.write_text(f"{self.proc.pid}\n")
        if self.port is not None:
            await asyncio.to_thread(wait_for_port, self.port, 20.0)

    async def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        out = unstamped(sys.stdout)  # the child stamped its lines (or NATS, Valkey: relay_line does): once only
        async for line in self.proc.stdout:
            out.write(relay_line(self.name, line.decode(errors="replace"), time.time()) + "\n")
            out.flush()

    async def stop(self, grace_s: float = 15.0) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), grace_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self.pump is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self.pump, 2)
        # uvicorn re-raises SIGTERM after its graceful shutdown: that is a clean stop.
        return 0 if proc.returncode == -signal.SIGTERM else proc.returncode


async def run_setup(argv: list[str], env: dict[str, str]) -> list[str]:
    """A one-shot step (migrations, first-run accounts and seed policy); its output is echoed and returned."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await proc.communicate()
    lines = [message_of(line) for line in output.decode(errors="replace").splitlines()]
    for line in lines:
        if not line.startswith("login "):  # credentials are shown once, in the banner
            print(f"[setup] {line}", flush=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[1:])} failed with exit code {proc.returncode}")
    return lines


def prepare_state_dir(path: str) -> Path:
    state = Path(path).resolve()
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o700)  # credentials, the database and the spool live here
    for sub in ("nats", "redis", "gate-spool"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    return state


def component_env(
    role: str, args: argparse.Namespace, passwords: dict[str, str], redis_role: str | None
) -> dict[str, str]:
    """This component's NATS user and password file beside a NATS_URL that holds no secret (a URL gets printed:
    docs/access.md), its REDIS_URL and its private reply inboxes."""
    password_file = Path(args.state_dir).resolve() / "credentials" / f"nats-{role}"
    password_file.parent.mkdir(mode=0o700, exist_ok=True)
    password_file.touch(mode=0o600)
    password_file.chmod(0o600)  # before the password is in it
    password_file.write_text(passwords[f"nats:{role}"] + "\n", encoding="utf-8")
    env = {
        "NATS_URL": f"nats://127.0.0.1:{args.nats_port}",
        "CIO_NATS_USER": role,
        "CIO_NATS_PASSWORD_FILE": str(password_file),
        "CIO_NATS_INBOX_PREFIX": access.NATS_ROLES[role].inbox_prefix,
    }
    if redis_role is not None:
        env["REDIS_URL"] = access.redis_url(redis_role, args.redis_port, passwords)
    return env


async def run(args: argparse.Namespace, state: Path) -> int:
    passwords = access.load_or_create_credentials(state)
    PolicySigner.load_or_create(state)  # the control plane signs policies with it; the gate trusts its public half
    # Gates sign their audit chains' checkpoints with this one; audit_verify (control plane, ingest) trusts its
    # public half. Only the gate is handed the private half.
    PolicySigner.load_or_create(state, audit_checkpoint.PRIVATE_KEY_FILE, audit_checkpoint.PUBLIC_KEY_FILE)
    audit_trust = {"CIO_AUDIT_PUBLIC_KEY_FILE": str(state / audit_checkpoint.PUBLIC_KEY_FILE)}
    nats_config, redis_acl = access.write_local_servers(state, passwords)
    nats_url = f"nats://127.0.0.1:{args.nats_port}"
    redis_url = f"redis://127.0.0.1:{args.redis_port}/0"
    base = {"CIO_STATE_DIR": str(state)}
    feed_redis = {"CIO_CHANNELS_REDIS_URL": access.redis_url("feed", args.redis_port, passwords)}
    control_env = {
        **base,
        **component_env("control", args, passwords, "control"),
        **feed_redis,
        "CIO_POLICY_SIGNING_KEY_FILE": str(state / PRIVATE_KEY_FILE),
        **audit_trust,
    }
    ingest_env = {**base, **component_env("audit", args, passwords, None), **feed_redis, **audit_trust}
    # The Strategist (worker, beat, listener): its own Redis keys, the broker under the `celery` identity.
    broker = {"CIO_CELERY_BROKER_URL": access.redis_url("celery", args.redis_port, passwords)}
    strategist_env = {
        **base,
        **component_env("strategist", args, passwords, "strategist"),
        **broker,
        "CIO_STRATEGIST_REDIS_URL": access.redis_url("strategist", args.redis_port, passwords),
    }
    # Alerts by email to the local mail catcher (Grafana and OpenTelemetry are not configured: recorded as skipped).
    mail = {
        "CIO_SMTP_HOST": "127.0.0.1",
        "CIO_SMTP_PORT": str(args.smtp_port),
        "CIO_ALERT_EMAIL_TO": os.environ.get("CIO_ALERT_EMAIL_TO", "oncall@localhost"),
    }
    strategist_env.update(mail)  # the worker delivers alerts too
    alerting_env = {
        **base,
        **component_env("alerting", args, passwords, None),
        **broker,
        **mail,
        "CIO_ALERTING_REDIS_URL": access.redis_url("alerting", args.redis_port, passwords),
    }
    control_env.update(broker)  # the admin's "run a cycle now" queues a task
    # MCP's public URL, and the trade engine's configuration API (a local stand-in under `make up`).
    control_env.update(
        CIO_MCP_PUBLIC_URL=f"http://127.0.0.1:{args.web_port}",
        CIO_TRADEENGINE_URL=os.environ.get("CIO_TRADEENGINE_URL", f"http://127.0.0.1:{args.tradeengine_port}"),
    )
    # The demo runs a cycle every minute (a deployment's default is 15; the schedule is editable in admin).
    control_env.setdefault("CIO_STRATEGIST_INTERVAL_S", os.environ.get("CIO_STRATEGIST_INTERVAL_S", "60"))
    gate_env = {
        **base,
        **component_env("gate", args, passwords, "gate"),
        "CIO_POLICY_PUBLIC_KEY_FILE": str(state / PUBLIC_KEY_FILE),
        "CIO_AUDIT_SIGNING_KEY_FILE": str(state / audit_checkpoint.PRIVATE_KEY_FILE),
    }
    demo_env = {
        **base,
        **component_env("strategy", args, passwords, None),
        "CIO_DEMO_TRADEENGINE_NATS_URL": access.nats_url("tradeengine", args.nats_port, passwords),
    }
    bridge_env = {
        **base,
        **component_env("snapshot-bridge", args, passwords, None),
        "CIO_ENGINE_STATE_URL": os.environ.get(
            "CIO_ENGINE_STATE_URL", f"http://127.0.0.1:{args.tradeengine_port}/state"
        ),
        "CIO_SNAPSHOT_SYMBOLS": os.environ.get("CIO_SNAPSHOT_SYMBOLS", SNAPSHOT_SYMBOLS),
        "CIO_SNAPSHOT_EVERY_S": os.environ.get("CIO_SNAPSHOT_EVERY_S", "2"),
    }
    children = [
        Child(
            "nats",
            [
                nats_server_binary(),
                "-c",
                str(nats_config),
                "-a",
                "127.0.0.1",
                "-p",
                str(args.nats_port),
                "-js",
                "-sd",
                str(state / "nats"),
                "-m",
                str(args.nats_monitor_port),
            ],
            port=args.nats_port,
        ),
        Child(
            "redis",
            [
                valkey_server_binary(),
                "--port",
                str(args.redis_port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(state / "redis"),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--aclfile",
                str(redis_acl),
            ],
            port=args.redis_port,
        ),
        Child(
            "mail",
            [
                sys.executable,
                "-m",
                "deploy.mail_catcher",
                "--port",
                str(args.smtp_port),
                "--folder",
                str(state / "mail"),
            ],
            port=args.smtp_port,
        ),
        Child(
            "tengn",
            [
                sys.executable,
                "-m",
                "deploy.fake_tradeengine",
                "--port",
                str(args.tradeengine_port),
                *(["--empty-book"] if args.no_demo else []),
            ],
            port=args.tradeengine_port,
        ),
        # The snapshot bridge reads the engine's (here the stand-in's) `GET /state` and publishes the book on
        # `cio.portfolio.snapshot` under its own identity (bridges/engine_state).
        Child("snap", [sys.executable, "-m", "bridges.engine_state"], env=bridge_env),
        Child(
            "gate",
            [sys.executable, "-m", "gate"],
            env={
                **gate_env,
                "CIO_GATE_ID": "local-gate-1",
                "CIO_AUDIT_SPOOL_DIR": str(state / "gate-spool"),
                "CIO_GATE_HEALTH_PORT": str(args.gate_health_port),  # probes and /metrics, as in Kubernetes
            },
            restart_after_s=args.gate_restart_after,
            pid_file=state / "gate.pid",
        ),
        Child(
            "web",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "cio_site.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(args.web_port),
                "--lifespan",
                "off",
                "--no-access-log",
                "--no-proxy-headers",  # the client address is the settings' business (CIO_TRUSTED_PROXIES)
            ],
            env=control_env,
            port=args.web_port,
        ),
    ]
    children.append(
        Child("recon", [sys.executable, "manage.py", "reconcile_policies", "--watch", "5"], env=control_env)
    )
    children.append(
        Child("ingest", [sys.executable, "manage.py", "audit_ingest", "--stats-every", "30"], env=ingest_env)
    )
    celery = [sys.executable, "-m", "celery", "-A", "cio_site"]
    children += [
        Child(
            "work",
            [*celery, *WORKER_ARGS],
            env=strategist_env,
        ),
        Child(
            "beat",
            [*celery, "beat", "-l", "INFO", "--pidfile=", "-s", str(state / "celerybeat-schedule")],
            env=strategist_env,
        ),
        Child("strat", [sys.executable, "manage.py", "strategist_listen", "--stats-every", "60"], env=strategist_env),
    ]
    children.append(
        Child("alert", [sys.executable, "manage.py", "alert_bridge", "--stats-every", "60"], env=alerting_env)
    )
    canary_env = {**base, **component_env("canary", args, passwords, None), **audit_trust}  # signed answers only
    children.append(
        Child(
            "oob",
            [
                sys.executable,
                "-m",
                "canary",
                "--watch",
                str(args.canary_every),
                "--health-url",
                f"http://127.0.0.1:{args.web_port}/api/health",
                "--smtp-host",
                "127.0.0.1",
                "--smtp-port",
                str(args.smtp_port),
                "--mail-to",
                mail["CIO_ALERT_EMAIL_TO"],
                "--state-file",
                str(state / "canary-state.json"),
                "--realert",
                "300",
            ],
            env=canary_env,
        )
    )
    if not args.no_demo:
        bot_env = {**base, **component_env("strategy-momentum_pulse", args, passwords, None)}
        children.append(Child("bot", [sys.executable, "-m", "deploy.demo_bot"], env=bot_env))
        children.append(
            Child("demo", [sys.executable, "-m", "deploy.demo_strategy", "--rate", str(args.demo_rate)], env=demo_env)
        )
        market_env = {**base, **component_env("marketdata", args, passwords, None)}
        children.append(Child("mkt", [sys.executable, "-m", "deploy.demo_market"], env=market_env))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started: list[Child] = []
    exit_code = 0
    accounts: list[str] = []
    try:
        for child in children:
            if child.name == "gate":
                manage = [sys.executable, "manage.py"]
                await run_setup([*manage, "migrate", "--noinput", "-v", "0"], control_env)
                accounts = [
                    line
                    for line in await run_setup([*manage, "bootstrap_local"], control_env)
                    if line.startswith("login ")
                ]
            await child.start()
            started.append(child)
        print(banner(args, nats_url, redis_url, state, accounts, passwords), flush=True)
        exit_code = await supervise(started, stop, args.duration)
    finally:
        print(
            "[stack] stopping: demo, canary, alerting, Strategist (listener, beat, worker), ingest, reconciler, web, "
            "gate (drains and flushes audit), snapshot bridge, trade-engine stand-in, mail, redis, nats",
            flush=True,
        )
        for child in reversed(started):
            code = await child.stop()
            print(f"[stack] {child.name} stopped (exit {code})", flush=True)
    return exit_code


async def supervise(started: list[Child], stop: asyncio.Event, duration: float | None) -> int:
    """Wait for Ctrl-C (or `duration`). A child that exits stops the stack, except one that restarts (the gate:
    stopping it is how to watch the canary alarm and the demo bot go conservative, then recover)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration if duration else None
    waiters = {asyncio.create_task(c.proc.wait()): c for c in started if c.proc is not None}
    restarts: dict[asyncio.Task[None], Child] = {}
    stopper = asyncio.create_task(stop.wait())

    async def restart(child: Child) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), child.restart_after_s)
        if not stop.is_set():
            await child.start()
            print(f"[stack] {child.name} started again", flush=True)

    try:
        while True:
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            done, _ = await asyncio.wait(
                [stopper, *waiters, *restarts], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done or stopper in done:
                return 0
            for task in done:
                if task in restarts:
                    child = restarts.pop(task)
                    if child.proc is not None and child.proc.returncode is None:
                        waiters[asyncio.create_task(child.proc.wait())] = child
                    continue
                child = waiters.pop(task)
                if child.restart_after_s is None:
                    print(f"[stack] {child.name} exited unexpectedly with {task.result()}; stopping", flush=True)
                    return 1
                print(
                    f"[stack] {child.name} exited with {task.result()}; starting it again in "
                    f"{child.restart_after_s:g} s (meanwhile the canary alarms and the demo bot goes conservative)",
                    flush=True,
                )
                restarts[asyncio.create_task(restart(child))] = child
    finally:
        for task in [stopper, *waiters, *restarts]:
            task.cancel()


def banner(
    args: argparse.Namespace, nats_url: str, redis_url: str, state: Path, accounts: list[str], passwords: dict[str, str]
) -> str:
    web = f"http://127.0.0.1:{args.web_port}"
    interval = os.environ.get("CIO_STRATEGIST_INTERVAL_S", "60")
    llm = os.environ.get("CIO_LLM_BASE_URL")
    brain = f"LLM at {llm} (rules when it fails)" if llm else "rules (set CIO_LLM_BASE_URL for an LLM)"
    logins = "\n".join(f"[stack]     {line}" for line in accounts) or "[stack]     (see .cio/local-credentials.json)"
    services = "\n".join(
        f"[stack]     {key.replace(':', ' user '):<24} password {value}" for key, value in sorted(passwords.items())
    )
    return f"""
[stack] ---------------------------------------------------------------------------------
[stack] Petrosa CIO local stack is up (Ctrl-C stops everything cleanly)
[stack]   NATS + JetStream  {nats_url}   monitoring http://127.0.0.1:{args.nats_monitor_port}/jsz
[stack]   Redis (Valkey)    {redis_url}   active policy: GET policy:active
[stack]   gate              local-gate-1: intent.trading.>, cio.intent.trading.>, cio.nurse.audit
[stack]                     -> signals.trading.<strategy_id>; audit -> JetStream stream CIO_AUDIT
[stack]   heartbeats        cio.gate.heartbeat (1 s), cio.heartbeat (10 s); ping: cio.gate.ping
[stack]   probes, metrics   gate http://127.0.0.1:{args.gate_health_port}/healthz/ready  /healthz/live  /metrics
[stack]                     web  {web}/api/health  {web}/api/live  {web}/metrics   (docs/metrics.md)
[stack]   demo fleet        {"off" if args.no_demo else f"{args.demo_rate:g} intents/s, mixed approvals and rejections"}
[stack]   state and logs    {state}
[stack]   audit ingest      CIO_AUDIT -> audit store (Django database); decisions arrive live at
[stack]                     {web}/admin/audit/decision/live/   browse {web}/admin/audit/decision/
[stack]   admin             {web}/admin/   (risk officers approve, activate, kill switch)
[stack]   Strategist        Celery worker + beat (a cycle every {interval} s on first run; schedule in admin),
[stack]                     listener on cio.market.regime / cio.portfolio.snapshot / rejections / alerts;
[stack]                     brain: {brain}
[stack]                     cycles and thoughts {web}/admin/strategist/cycle/
[stack]                     its proposals wait for an officer in {web}/admin/policies/policyversion/
[stack]   alerting          cio.alert.> -> bridge -> Celery -> email to the mail catcher (127.0.0.1:{args.smtp_port},
[stack]                     kept in {state / "mail"}); Grafana/OTel when configured; {web}/admin/audit/alert/
[stack]   canary            [  oob] pings the gate and /api/health every {args.canary_every:g} s; alarms by direct SMTP
[stack]   try it            kill $(cat {state / "gate.pid"})   -> the canary's alarm mail, the demo bot [  bot]
[stack]                     goes conservative; the gate restarts {args.gate_restart_after:g} s later, the bot recovers
[stack]   MCP               {web}/mcp   (streamable HTTP; header Authorization: Bearer <API token>; docs/mcp.md)
[stack]   trade engine      stand-in on 127.0.0.1:{args.tradeengine_port}: configuration (/api/config, MCP config tools)
[stack]                     and its book on GET /state, which the snapshot bridge [ snap] publishes on
[stack]                     cio.portfolio.snapshot every few seconds (bridges/engine_state)
[stack]   REST API          {web}/api/policy  {web}/api/audit  {web}/api/trace/<trace_id>
[stack]                     schema {web}/api/schema   (header: Authorization: Token <token>)
[stack]   accounts (first run creates them; officer1 proposes, officer2 approves: four eyes)
{logins}
[stack]   service identities (least privilege, deploy/access.py; kept in {state / access.CREDENTIALS_FILE})
{services}
[stack] ---------------------------------------------------------------------------------"""


def main() -> None:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", default=env("CIO_STATE_DIR", str(ROOT / ".cio")))
    parser.add_argument("--nats-port", type=int, default=int(env("CIO_DEV_NATS_PORT", "14222")))
    parser.add_argument("--nats-monitor-port", type=int, default=int(env("CIO_DEV_NATS_MONITOR_PORT", "18222")))
    parser.add_argument("--redis-port", type=int, default=int(env("CIO_DEV_REDIS_PORT", "16379")))
    parser.add_argument("--web-port", type=int, default=int(env("CIO_DEV_WEB_PORT", "18000")))
    parser.add_argument("--gate-health-port", type=int, default=int(env("CIO_DEV_GATE_HEALTH_PORT", "18081")))
    parser.add_argument("--smtp-port", type=int, default=int(env("CIO_DEV_SMTP_PORT", "18025")))
    parser.add_argument("--tradeengine-port", type=int, default=int(env("CIO_DEV_TRADEENGINE_PORT", "18090")))
    parser.add_argument(
        "--gate-restart-after",
        type=float,
        default=float(env("CIO_DEV_GATE_RESTART_S", "20")),
        help="a gate that exits is started again after this many seconds",
    )
    parser.add_argument("--canary-every", type=float, default=float(env("CIO_DEV_CANARY_EVERY_S", "10")))
    parser.add_argument("--demo-rate", type=float, default=float(env("CIO_DEMO_RATE", "2")))
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--duration", type=float, default=None, help="stop by itself after this many seconds")
    args = parser.parse_args()
    state = prepare_state_dir(args.state_dir)
    sys.exit(asyncio.run(run(args, state)))


if __name__ == "__main__":
    configure_logging("stack")  # its own lines stamped too; children's lines relayed, stamped once (docs/logging.md)
    main()
