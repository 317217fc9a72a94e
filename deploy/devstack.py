"""`make up`: the whole local stack in the foreground, with prefixed logs, stopped cleanly on Ctrl-C/SIGTERM.

Children: NATS (JetStream) and Valkey from pip wheels, the gate (`python -m gate`), the control plane (uvicorn),
the trade-engine stand-in with the snapshot bridge reading its state API (`python -m bridges.engine_state`), and
the demo fleet playing its ten-minute schedule (deploy/demo_schedule.py), local stand-ins for the Grafana and
OpenTelemetry alert channels (deploy/alert_receivers.py) and, with `CIO_DEV_LLM=1`, a local chat-completions
server for the Strategist's LLM brain (deploy/dev_llm.py). First run: migrations, officer accounts and the
example policy as v1. State lives under `.cio/` (override with --state-dir), readable only by its owner. Ports
stay away from the standard ones (4222, 6379). NATS and Valkey run with the permissions of `deploy/access.py`:
every child connects with its own identity (passwords generated on first run into the state folder, never
printed). `.cio/env.sh` holds every connection setting for a shell (docs/devstack.md).
"""

import argparse
import asyncio
import contextlib
import os
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cio_kernel import audit_checkpoint
from cio_kernel.log_format import configure_logging, message_of, relay_line, unstamped
from cio_kernel.policy.signing import PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, PolicySigner
from deploy import access, demo_schedule
from deploy.servers import die_with_parent, nats_server_binary, valkey_server_binary, wait_for_port
from deploy.workloads import CELERY_WORKER

ROOT = Path(__file__).resolve().parents[1]
# Every symbol the demo book (deploy/fake_tradeengine.py) and the demo fleet trade: the bridge refuses a round
# whose exposure these do not account for.
SNAPSHOT_SYMBOLS = "BTCUSDT,ETHUSDT,SOLUSDT,DOGEUSDT"
# The Celery worker as deployed (deploy/workloads.py says why these options).
WORKER_ARGS = list(CELERY_WORKER)
ENV_FILE = "env.sh"  # every connection setting for a shell (docs/devstack.md, "From a shell")
SHELL_IDENTITY = "audit"  # the shell's NATS identity: audit_verify reads the audit and checkpoint streams
LLM_STANDIN_MODEL = "cio-dev-standin"


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


def nats_password_file(state: Path, role: str, passwords: dict[str, str]) -> Path:
    """`<state>/credentials/nats-<role>`, readable only by its owner, holding that identity's NATS password."""
    password_file = state / "credentials" / f"nats-{role}"
    password_file.parent.mkdir(mode=0o700, exist_ok=True)
    password_file.touch(mode=0o600)
    password_file.chmod(0o600)  # before the password is in it
    password_file.write_text(passwords[f"nats:{role}"] + "\n", encoding="utf-8")
    return password_file


def component_env(
    role: str, args: argparse.Namespace, passwords: dict[str, str], redis_role: str | None
) -> dict[str, str]:
    """This component's NATS user and password file beside a NATS_URL that holds no secret (a URL gets printed:
    docs/access.md), its REDIS_URL and its private reply inboxes."""
    env = {
        "NATS_URL": f"nats://127.0.0.1:{args.nats_port}",
        "CIO_NATS_USER": role,
        "CIO_NATS_PASSWORD_FILE": str(nats_password_file(Path(args.state_dir).resolve(), role, passwords)),
        "CIO_NATS_INBOX_PREFIX": access.NATS_ROLES[role].inbox_prefix,
    }
    if redis_role is not None:
        env["REDIS_URL"] = access.redis_url(redis_role, args.redis_port, passwords)
    return env


OTLP_SIGNALS = {"TRACES": "traces", "LOGS": "logs", "METRICS": "metrics"}


def alert_channel_env(args: argparse.Namespace) -> dict[str, str]:
    """Grafana and OpenTelemetry pointed at the local stand-ins, unless the environment names real ones. OTLP per
    signal (`OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`), not the shared endpoint: that one also turns on tracing in
    every process that has it (cio_kernel/tracing.py), which is not what an alert channel asks for."""
    env: dict[str, str] = {}
    if not os.environ.get("CIO_GRAFANA_URL"):
        env["CIO_GRAFANA_URL"] = f"http://127.0.0.1:{args.grafana_port}"
    if not any(name.startswith("OTEL_EXPORTER_OTLP_") and name.endswith("ENDPOINT") for name in os.environ):
        for signal_name, path in OTLP_SIGNALS.items():
            env[f"OTEL_EXPORTER_OTLP_{signal_name}_ENDPOINT"] = f"http://127.0.0.1:{args.otlp_port}/v1/{path}"
    return env


def llm_base_url() -> str:
    """A real OpenAI-compatible server for the LLM brain, when one is named (`CIO_DEV_LLM_BASE_URL`, or the
    deployment's own `CIO_LLM_BASE_URL`)."""
    return os.environ.get("CIO_DEV_LLM_BASE_URL") or os.environ.get("CIO_LLM_BASE_URL") or ""


def llm_env(args: argparse.Namespace) -> dict[str, str]:
    """The Strategist's LLM settings: a named server, the local stand-in (`CIO_DEV_LLM=1`), or none (rules)."""
    if url := llm_base_url():
        return {"CIO_LLM_BASE_URL": url}  # CIO_LLM_MODEL and CIO_LLM_API_KEY come from the environment as they are
    if args.llm:
        return {"CIO_LLM_BASE_URL": f"http://127.0.0.1:{args.llm_port}/v1", "CIO_LLM_MODEL": LLM_STANDIN_MODEL}
    return {}


def shell_env(
    args: argparse.Namespace,
    state: Path,
    passwords: dict[str, str],
    control_env: dict[str, str],
    alerts: dict[str, str],
) -> dict[str, str]:
    """What `manage.py` commands, `python -m canary` and the other tools read, for this stack: the control plane's
    settings with the `audit` NATS identity (it reads the audit and checkpoint streams), and the canary's own."""
    keep = (
        "CIO_STATE_DIR",
        "REDIS_URL",
        "CIO_CHANNELS_REDIS_URL",
        "CIO_CELERY_BROKER_URL",
        "CIO_POLICY_SIGNING_KEY_FILE",
        "CIO_AUDIT_PUBLIC_KEY_FILE",
        "CIO_MCP_PUBLIC_URL",
        "CIO_TRADEENGINE_URL",
    )
    web = f"http://127.0.0.1:{args.web_port}"
    canary = component_env("canary", args, passwords, None)
    return {
        **{name: control_env[name] for name in keep},
        **component_env(SHELL_IDENTITY, args, passwords, None),
        # The stack's children inherit this environment: a database or audit store given to `make up` is theirs.
        "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{state / 'control-plane.sqlite3'}",
        "CIO_AUDIT_STORE": os.environ.get("CIO_AUDIT_STORE") or "django",
        **({"MONGODB_URI": os.environ["MONGODB_URI"]} if os.environ.get("MONGODB_URI") else {}),
        "CIO_POLICY_PUBLIC_KEY_FILE": str(state / PUBLIC_KEY_FILE),
        "CIO_STRATEGIST_REDIS_URL": access.redis_url("strategist", args.redis_port, passwords),
        "CIO_ALERTING_REDIS_URL": access.redis_url("alerting", args.redis_port, passwords),
        **alerts,
        **llm_env(args),
        "CIO_CANARY_NATS_USER": canary["CIO_NATS_USER"],
        "CIO_CANARY_NATS_PASSWORD_FILE": canary["CIO_NATS_PASSWORD_FILE"],
        "CIO_CANARY_INBOX_PREFIX": canary["CIO_NATS_INBOX_PREFIX"],
        "CIO_CANARY_HEALTH_URL": f"{web}/api/health",
        "CIO_CANARY_SMTP_HOST": "127.0.0.1",
        "CIO_CANARY_SMTP_PORT": str(args.smtp_port),
        "CIO_CANARY_MAIL_TO": alerts["CIO_ALERT_EMAIL_TO"],
        "CIO_CANARY_STATE_FILE": str(state / "canary-shell-state.json"),  # not the running canary's
    }


def write_env_file(state: Path, env: dict[str, str], passwords: dict[str, str]) -> Path:
    """`<state>/env.sh`, readable only by its owner (its Redis URLs hold passwords): `source` it and the commands
    reach this stack. `cio_as <identity> <command>` runs one command under another component's NATS identity."""
    roles = sorted(key.removeprefix("nats:") for key in passwords if key.startswith("nats:"))
    roles = [role for role in roles if role in access.NATS_ROLES]
    for role in roles:
        nats_password_file(state, role, passwords)
    cases = "\n".join(
        f"    {shlex.quote(role)}) _cio_inbox={shlex.quote(access.NATS_ROLES[role].inbox_prefix)} ;;" for role in roles
    )
    text = "\n".join(
        [
            "# make up's connection settings for a shell (deploy/devstack.py, docs/devstack.md).",
            "# Rewritten at each start. Holds Redis passwords: keep it to yourself (mode 0600).",
            "unset CIO_NATS_PASSWORD  # the password comes from CIO_NATS_PASSWORD_FILE",
            *(f"export {name}={shlex.quote(value)}" for name, value in env.items()),
            "",
            "# cio_as <identity> <command...>: one command under another component's NATS identity,",
            "# e.g. cio_as control python manage.py reconcile_policies",
            "cio_as() {",
            '    case "$1" in',
            cases,
            '    *) echo "cio_as: no identity $1 (see deploy/access.py)" >&2; return 2 ;;',
            "    esac",
            '    _cio_role="$1"; shift',
            '    CIO_NATS_USER="$_cio_role" CIO_NATS_PASSWORD_FILE="$CIO_STATE_DIR/credentials/nats-$_cio_role" \\',
            '        CIO_NATS_INBOX_PREFIX="$_cio_inbox" "$@"',
            "}",
            "",
        ]
    )
    path = state / ENV_FILE
    path.touch(mode=0o600)
    path.chmod(0o600)  # before a password is in it
    path.write_text(text, encoding="utf-8")
    return path


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
    # Alerts on all three channels: email to the local mail catcher, Grafana and OpenTelemetry to their local
    # stand-ins (unless the environment names real ones).
    mail = {
        "CIO_SMTP_HOST": "127.0.0.1",
        "CIO_SMTP_PORT": str(args.smtp_port),
        "CIO_ALERT_EMAIL_TO": os.environ.get("CIO_ALERT_EMAIL_TO", "oncall@localhost"),
        **alert_channel_env(args),
    }
    strategist_env.update(mail)  # the worker delivers alerts too
    strategist_env.update(llm_env(args))
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
    # One start for the demo schedule's phases, whichever process plays them (deploy/demo_schedule.py).
    schedule = {demo_schedule.T0_ENV: os.environ.get(demo_schedule.T0_ENV) or f"{time.time():.3f}"}
    demo_env = {
        **base,
        **schedule,
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
                *(["--empty-book"] if args.no_demo else ["--schedule"]),
            ],
            env=schedule,
            port=args.tradeengine_port,
        ),
        Child(
            "alrt",
            [
                sys.executable,
                "-m",
                "deploy.alert_receivers",
                "--grafana-port",
                str(args.grafana_port),
                "--otlp-port",
                str(args.otlp_port),
                "--folder",
                str(state / "alerts"),
            ],
            port=args.otlp_port,
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
        market_env = {**base, **schedule, **component_env("marketdata", args, passwords, None)}
        children.append(Child("mkt", [sys.executable, "-m", "deploy.demo_market"], env=market_env))

    if args.llm and not llm_base_url():
        llm = [sys.executable, "-m", "deploy.dev_llm", "--port", str(args.llm_port)]
        worker = next(i for i, child in enumerate(children) if child.name == "work")
        children.insert(worker, Child("llm", llm, port=args.llm_port))  # answering before the first cycle
    env_file = write_env_file(state, shell_env(args, state, passwords, control_env, mail), passwords)

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
        print(banner(args, nats_url, redis_url, state, accounts, env_file), flush=True)
        exit_code = await supervise(started, stop, args.duration)
    finally:
        print(
            "[stack] stopping: demo, canary, alerting, Strategist (listener, beat, worker, LLM stand-in), ingest, "
            "reconciler, web, gate (drains and flushes audit), snapshot bridge, alert stand-ins, trade-engine "
            "stand-in, mail, redis, nats",
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


def accounts_line(accounts: list[str]) -> str:
    """`officer1 (risk_officer), ...` from bootstrap_local's `login <name> role <role> password ...` lines: the
    names only, the passwords and tokens stay in the credentials file."""
    found = []
    for line in accounts:
        words = line.split()
        if len(words) >= 4 and words[2] == "role":
            found.append(f"{words[1]} ({words[3]})")
    return ", ".join(found) or "(none created)"


def banner(
    args: argparse.Namespace, nats_url: str, redis_url: str, state: Path, accounts: list[str], env_file: Path
) -> str:
    """Short: where to look. Passwords and tokens are in the state folder's credentials files, never here."""
    web = f"http://127.0.0.1:{args.web_port}"
    interval = os.environ.get("CIO_STRATEGIST_INTERVAL_S", "60")
    llm = llm_env(args).get("CIO_LLM_BASE_URL")
    if llm and not llm_base_url():
        brain = f"LLM, local stand-in [  llm] at {llm}"
    elif llm:
        brain = f"LLM at {llm} (rules when it fails)"
    else:
        brain = "rules (CIO_DEV_LLM=1: LLM on a local stand-in)"
    alerts = alert_channel_env(args)
    grafana = alerts.get("CIO_GRAFANA_URL", os.environ.get("CIO_GRAFANA_URL", ""))
    otlp = f"http://127.0.0.1:{args.otlp_port}/v1/" if alerts.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") else "yours"
    if args.no_demo:
        demo = "off"
    elif demo_schedule.Clock.from_env().enabled:
        phases = ", ".join(f"{p.name.replace('_', ' ')} {demo_schedule.mmss(p.start_s)}" for p in demo_schedule.PHASES)
        demo = f"{args.demo_rate:g} intents/s; then {phases} (CIO_DEMO_SCENARIOS=0: off)"
    else:
        demo = f"{args.demo_rate:g} intents/s, steady mix (schedule off)"
    return f"""
[stack] ---------------------------------------------------------------------------------
[stack] Petrosa CIO local stack is up (Ctrl-C stops everything cleanly; docs/devstack.md)
[stack]   admin         {web}/admin/   live decisions {web}/admin/audit/decision/live/
[stack]   REST, MCP     {web}/api/ (schema /api/schema)   {web}/mcp
[stack]   NATS, Redis   {nats_url} (monitoring http://127.0.0.1:{args.nats_monitor_port}/jsz)   {redis_url}
[stack]   gate          local-gate-1, probes and metrics http://127.0.0.1:{args.gate_health_port}/healthz/ready /metrics
[stack]   Strategist    a cycle every {interval} s; brain: {brain}
[stack]   alerts        email [ mail] ({state / "mail"}), Grafana {grafana} and OTel {otlp} [ alrt]
[stack]                 ({state / "alerts"}); all three per alert at {web}/admin/audit/alert/
[stack]   demo fleet    {demo}
[stack]   try it        kill $(cat {state / "gate.pid"})   -> canary alarm, bot conservative; the gate is
[stack]                 started again {args.gate_restart_after:g} s later
[stack]   accounts      {accounts_line(accounts)}; officer1 proposes, officer2 approves
[stack]   credentials   {state / "local-credentials.json"} (logins, API tokens), {state / access.CREDENTIALS_FILE}
[stack]   from a shell  source {env_file}   then e.g. python manage.py audit_verify --live-heads
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
    parser.add_argument("--grafana-port", type=int, default=int(env("CIO_DEV_GRAFANA_PORT", "18300")))
    parser.add_argument("--otlp-port", type=int, default=int(env("CIO_DEV_OTLP_PORT", "18318")))
    parser.add_argument("--llm-port", type=int, default=int(env("CIO_DEV_LLM_PORT", "18400")))
    parser.add_argument(
        "--llm",
        action="store_true",
        default=env("CIO_DEV_LLM", "0") == "1",
        help="the Strategist's LLM brain on a local chat-completions stand-in, or on CIO_DEV_LLM_BASE_URL",
    )
    parser.add_argument(
        "--no-demo", action="store_true", default=env("CIO_DEMO", "1") == "0", help="no demo fleet (CIO_DEMO=0)"
    )
    parser.add_argument("--duration", type=float, default=None, help="stop by itself after this many seconds")
    args = parser.parse_args()
    state = prepare_state_dir(args.state_dir)
    sys.exit(asyncio.run(run(args, state)))


if __name__ == "__main__":
    configure_logging("stack")  # its own lines stamped too; children's lines relayed, stamped once (docs/logging.md)
    main()
