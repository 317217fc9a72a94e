"""`python -m canary` (check, or `--watch N`) and `python -m canary halt` (break glass). docs/canary.md.

Exit codes: 0 healthy, or halted and confirmed by every gate heard; 1 unhealthy (alarmed, or held back by
deduplication), or a halt that reached no gate; 2 bad usage; 3 unhealthy and no alarm channel took the message
(cron should escalate that itself); 4 a halt sent (or written to Redis) that not every gate confirmed."""

import argparse
import asyncio
import os
import signal
import sys
import threading
import time
from pathlib import Path

from canary import halt as break_glass
from canary.alarm import Alarm, AlarmSettings
from canary.checks import Expectations, Seen, evaluate, status_line
from canary.probe import check_health, ping_gate
from cio_kernel.defaults import LOCAL_NATS_URL
from cio_kernel.log_format import configure_logging
from cio_kernel.policy.signing import PolicyVerifier

HEALTHY, UNHEALTHY, USAGE, UNALARMED, UNCONFIRMED = 0, 1, 2, 3, 4
HALT_EXIT = {
    break_glass.Outcome.HALTED: HEALTHY,
    break_glass.Outcome.FAILED: UNHEALTHY,
    break_glass.Outcome.UNCONFIRMED: UNCONFIRMED,
}


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name) or default


def recorded(text: str) -> str:
    """An operator or a reason, recorded with the halt: never empty, and never a Kubernetes `$(VAR)` reference left
    unexpanded (the break-glass CronJob passes them as `$(CIO_BREAK_GLASS_OPERATOR)`; an unset variable would reach
    us as that literal text and be recorded as the operator)."""
    text = text.strip()
    if not text:
        raise argparse.ArgumentTypeError("must not be empty: the halt records who broke the glass and why")
    if text.startswith("$(") and text.endswith(")"):
        raise argparse.ArgumentTypeError(f"{text} was not expanded: set that variable (docs/canary.md)")
    return text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m canary", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--nats-url", default=_env("CIO_CANARY_NATS_URL", _env("NATS_URL", LOCAL_NATS_URL)))
    p.add_argument(
        "--inbox-prefix",
        default=None,
        help="reply inbox; default CIO_CANARY_INBOX_PREFIX (the check) or CIO_NATS_INBOX_PREFIX (halt), else _INBOX",
    )
    p.add_argument("--health-url", default=_env("CIO_CANARY_HEALTH_URL"), help="the control plane's /api/health")
    p.add_argument("--max-heartbeat-age", type=float, default=float(_env("CIO_CANARY_MAX_HEARTBEAT_AGE_S", "5")))
    p.add_argument(
        "--gate-public-key",
        default=_env("CIO_AUDIT_PUBLIC_KEY", ""),
        help="the gates' audit public key(s), base64: only a ping answer a gate signed counts",
    )
    p.add_argument("--gate-public-key-file", type=Path, default=_env("CIO_AUDIT_PUBLIC_KEY_FILE"))
    p.add_argument("--min-policy-version", type=int, default=None)
    p.add_argument("--expect-state", default=_env("CIO_CANARY_EXPECT_STATE"), help="e.g. active")
    p.add_argument("--timeout", type=float, default=float(_env("CIO_CANARY_TIMEOUT_S", "3")))
    p.add_argument(
        "--watch",
        type=float,
        nargs="?",
        const=60.0,
        default=None,
        metavar="SECONDS",
        help="check every SECONDS (60 when given without a number) until stopped",
    )
    p.add_argument("--smtp-host", default=_env("CIO_CANARY_SMTP_HOST"))
    p.add_argument("--smtp-port", type=int, default=int(_env("CIO_CANARY_SMTP_PORT", "25") or 25))
    p.add_argument("--mail-to", default=_env("CIO_CANARY_MAIL_TO", ""), help="comma-separated")
    p.add_argument("--mail-from", default=_env("CIO_CANARY_MAIL_FROM", "petrosa-cio-canary@localhost"))
    p.add_argument("--webhook-url", default=_env("CIO_CANARY_WEBHOOK_URL"))
    p.add_argument("--state-file", default=_env("CIO_CANARY_STATE_FILE", ".cio/canary-state.json"))
    p.add_argument(
        "--realert",
        type=float,
        default=float(_env("CIO_CANARY_REALERT_S", "3600")),
        help="seconds before the same problem alarms again",
    )
    sub = p.add_subparsers(dest="command")
    h = sub.add_parser(
        "halt",
        help="break glass: halt all trading through Redis/NATS directly, with the `control` identity",
        description="Exit codes: 0 every gate heard confirmed the halt; 1 nothing reached the gates (NATS "
        "unreachable or refused, no gate and no Redis, no key); 2 bad usage; 4 sent or written, but not every "
        "gate confirmed it in time (read the output). docs/canary.md.",
    )
    h.add_argument("--redis-url", default=_env("CIO_BREAK_GLASS_REDIS_URL", _env("REDIS_URL")))
    h.add_argument("--signing-key", type=Path, default=_env("CIO_BREAK_GLASS_SIGNING_KEY_FILE"))
    h.add_argument("--operator", required=True, type=recorded, help="who is breaking the glass (recorded)")
    h.add_argument("--reason", required=True, type=recorded, help="why (recorded)")
    h.add_argument(
        "--listen",
        type=float,
        default=float(_env("CIO_BREAK_GLASS_LISTEN_S", "3") or 3),
        help="seconds to listen for gate heartbeats first: every gate heard must confirm (3)",
    )
    h.add_argument(
        "--confirm-timeout",
        type=float,
        default=float(_env("CIO_BREAK_GLASS_CONFIRM_S", "10") or 10),
        help="seconds to wait for every gate heard to report the halt (10)",
    )
    return p


def alarm_for(args: argparse.Namespace) -> Alarm:
    return Alarm(
        AlarmSettings(
            smtp_host=args.smtp_host,
            smtp_port=args.smtp_port,
            smtp_user=_env("CIO_CANARY_SMTP_USER"),
            smtp_password=_env("CIO_CANARY_SMTP_PASSWORD"),
            smtp_starttls=_env("CIO_CANARY_SMTP_STARTTLS", "0") == "1",
            mail_from=args.mail_from,
            mail_to=tuple(a.strip() for a in args.mail_to.split(",") if a.strip()),
            webhook_url=args.webhook_url,
            state_file=Path(args.state_file),
            realert_s=args.realert,
            timeout_s=args.timeout * 3,
        )
    )


def check_once(args: argparse.Namespace, alarm: Alarm) -> int:
    verifier = PolicyVerifier.from_config(args.gate_public_key or "", args.gate_public_key_file)
    beat, ping_error = asyncio.run(ping_gate(args.nats_url, args.inbox_prefix, args.timeout, verifier))
    web_status, web_error = check_health(args.health_url, args.timeout) if args.health_url else (None, None)
    seen = Seen(beat, ping_error, web_status, web_error)
    expect = Expectations(args.max_heartbeat_age, args.min_policy_version, args.expect_state, bool(args.health_url))
    now = time.time()
    problems = evaluate(seen, expect, now)
    sent, failed = alarm.handle(problems, status_line(seen, problems, now))
    notes = ", ".join([f"alarmed: {'+'.join(sent)}"] * bool(sent) + [f"alarm failed: {f}" for f in failed])
    print(status_line(seen, problems, now, notes), flush=True)
    if not problems:
        return HEALTHY
    if not alarm.settings.channels or (failed and not sent):
        return UNALARMED
    return UNHEALTHY


def inbox_prefix(command: str | None) -> str:
    """The reply inbox of the identity the command connects with: the check's own (`CIO_CANARY_INBOX_PREFIX`,
    beside `CIO_CANARY_NATS_USER`: canary/connection.py) or, for the break glass, the shared one."""
    shared = _env("CIO_NATS_INBOX_PREFIX", "_INBOX")
    return shared if command == "halt" else _env("CIO_CANARY_INBOX_PREFIX", shared)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.inbox_prefix = args.inbox_prefix or inbox_prefix(args.command)
    if args.command == "halt":
        if args.signing_key is None:
            print(
                "halt needs --signing-key (or CIO_BREAK_GLASS_SIGNING_KEY_FILE): the break-glass copy of the "
                "policy signing key",
                file=sys.stderr,
            )
            return USAGE
        result = break_glass.run(
            args.nats_url,
            args.redis_url,
            args.signing_key,
            args.operator,
            args.reason,
            args.inbox_prefix,
            args.timeout,
            args.listen,
            args.confirm_timeout,
            PolicyVerifier.from_config(args.gate_public_key or "", args.gate_public_key_file),
        )
        *steps, last = result.lines or ("",)
        for line in steps:
            print(f"  {line}")
        print(f"BREAK GLASS {result.outcome}: {last}", flush=True)
        return HALT_EXIT[result.outcome]
    alarm = alarm_for(args)
    if args.watch is None:
        return check_once(args, alarm)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    code = HEALTHY
    while not stop.is_set():
        code = check_once(args, alarm)
        stop.wait(args.watch)
    return code


if __name__ == "__main__":
    configure_logging("canary")  # a timestamp on every line, text or JSON (docs/logging.md)
    sys.exit(main())
