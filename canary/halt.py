"""The nuclear option (docs/canary.md, "Break glass"): halt all trading from outside the cluster, with the
control plane's NATS and Redis identity (`control`) and the break-glass copy of the policy signing key, when the
control plane is unreachable. It reports success only when every gate it heard beating says it is halted.

1. Listen to `cio.gate.heartbeat` for a few seconds: the gates that beat are the ones that must confirm.
2. With Redis reachable: read `policy:active`, check it is the control plane's (signed with this key, checksum
   intact), write the same spec with `global.trading_state = halted` as the next version through the same
   check-and-set every activation uses, and announce it on `cio.strategist.update`. `activated_by` records
   `break-glass:<operator>: <reason>`; the control plane's reconciler adopts it when it comes back.
3. Always: send the signed kill-switch notice for that version on `cio.trading.state` (what the control plane
   does when Redis is down). Every gate that verifies it halts at once and holds the halt in memory until it
   adopts a policy of that version, so a gate that cannot read Redis is halted too. Without Redis the version is
   one above the newest any gate runs.
4. Wait until every gate heard reports `trading_state: halted` at that version or later (its policy's version or
   the notice it holds), re-sending the notice meanwhile for gates that missed it.

NATS reports a refused publish or subscription asynchronously (error_cb), never from the call: each step
flushes and then looks at what the server refused, so a wrong identity fails loudly instead of "succeeding"."""

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from pydantic import ValidationError
from redis.exceptions import RedisError

from canary.connection import connect_once
from cio_kernel import heartbeat_seal
from cio_kernel.contracts.heartbeat import GateHeartbeat
from cio_kernel.contracts.policy_update import PolicyUpdate
from cio_kernel.contracts.trading_state_notice import TradingStateNotice
from cio_kernel.nats_flush import flush_ordered
from cio_kernel.policy.document import PolicyDocument
from cio_kernel.policy.signing import PolicySigner, PolicyVerifier
from cio_kernel.policy.spec import PolicySpec, TradingState
from cio_kernel.policy.store import build_document, read_active_raw, write_active_policy
from cio_kernel.redaction import redact_text
from cio_kernel.redis_clients import SentinelConfig, async_client
from cio_kernel.subjects import GATE_HEARTBEAT, STRATEGIST_UPDATE, TRADING_STATE

HALTED = TradingState.HALTED.value


class Outcome(StrEnum):
    HALTED = "HALTED"  # every gate heard confirmed the halt
    UNCONFIRMED = "UNCONFIRMED"  # the halt went out (or into Redis), but not every gate confirmed it
    FAILED = "FAILED"  # nothing reached the gates: unreachable, refused, no key, or no gate and no Redis


@dataclass(frozen=True)
class HaltResult:
    outcome: Outcome
    version: int | None  # the halted version gates must reach
    persisted: bool  # Redis holds the halt (durable); False: only the gates' memory holds it
    confirmed: tuple[str, ...] = ()
    unconfirmed: dict[str, str] = field(default_factory=dict)  # gate id -> what it last said
    lines: tuple[str, ...] = ()  # what happened, step by step, for the person at the keyboard

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.HALTED


def halted(spec: PolicySpec) -> PolicySpec:
    raw = spec.model_dump(mode="json", by_alias=True)
    raw["global"]["trading_state"] = HALTED
    return PolicySpec.parse(raw)


def floor_of(beat: GateHeartbeat, verifier: PolicyVerifier) -> int:
    """The version floor a gate reports (docs/policy.md, "No rollback"), when it verifies; else 0."""
    floor = beat.policy_floor
    return floor.version if floor is not None and floor.verified_by(verifier) else 0


def confirms(beat: GateHeartbeat, version: int) -> bool:
    """The gate says it is halted, by a policy or a held notice of `version` or later (so it stays halted until
    a policy of at least that version replaces it)."""
    held = max(beat.policy_version or 0, beat.notice_version or 0)
    return beat.trading_state == HALTED and held >= version


class _Refusals:
    """What the NATS server refused this connection (permission violations arrive through error_cb)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def on_error(self, exc: Exception) -> None:
        self.seen.append(redact_text(str(exc)))

    def about(self, subject: str, since: int = 0) -> list[str]:
        return [e for e in self.seen[since:] if "permissions violation" in e.lower() and subject in e]


class _Fleet:
    """The latest heartbeat of every gate heard (the gates that must confirm) and the notices each had refused
    before we sent ours. With the gates' public key only heartbeats a gate signed count: whoever holds a gate's
    NATS password can publish `cio.gate.heartbeat` too, and could otherwise "confirm" a halt for a gate that is
    still trading, or make up gates that never confirm."""

    def __init__(self, gate_key: PolicyVerifier | None = None) -> None:
        self.beats: dict[str, GateHeartbeat] = {}
        self.heard_at: dict[str, float] = {}  # monotonic time of each gate's latest beat
        self.refused_before: dict[str, int] = {}
        self.changed = asyncio.Event()
        self.gate_key = gate_key
        self.unsigned = 0  # heartbeats ignored: not signed by a trusted gate key

    async def on_beat(self, msg: Msg) -> None:
        try:
            body = orjson.loads(msg.data)
            beat = GateHeartbeat.model_validate(body)
        except (ValueError, orjson.JSONDecodeError):  # ValidationError is a ValueError
            return
        if self.gate_key is not None and not (isinstance(body, dict) and heartbeat_seal.verify(body, self.gate_key)):
            self.unsigned += 1
            return
        self.beats[beat.gate_id] = beat
        self.heard_at[beat.gate_id] = time.monotonic()
        self.refused_before.setdefault(beat.gate_id, beat.counters.notices_refused)
        self.changed.set()

    def mark_sent(self) -> None:
        self.refused_before = {gate: beat.counters.notices_refused for gate, beat in self.beats.items()}

    def newest_version(self, verifier: PolicyVerifier) -> int:
        """The newest version any gate heard runs, holds by notice, or knows was activated (its verified floor)."""
        return max(
            (max(b.policy_version or 0, b.notice_version or 0, floor_of(b, verifier)) for b in self.beats.values()),
            default=0,
        )

    def floor(self, verifier: PolicyVerifier) -> int:
        return max((floor_of(b, verifier) for b in self.beats.values()), default=0)

    def split(self, version: int) -> tuple[list[str], dict[str, str]]:
        done, waiting = [], {}
        for gate, beat in sorted(self.beats.items()):
            if confirms(beat, version):
                done.append(gate)
            else:
                waiting[gate] = self.why_not(beat, version)
        return done, waiting

    def why_not(self, beat: GateHeartbeat, version: int) -> str:
        if beat.policy_version is None:
            says = f"{beat.trading_state or 'no policy'} (it runs no policy, so it approves nothing)"
        else:
            says = f"{beat.trading_state} at v{beat.policy_version}"
        if beat.notice_version is not None:
            says += f" (holding a notice for v{beat.notice_version})"
        silent = time.monotonic() - self.heard_at.get(beat.gate_id, time.monotonic())
        if silent > 2.0:
            says += f", silent for {silent:.0f} s (stopped, stuck or cut off?)"
        if beat.counters.notices_refused > self.refused_before.get(beat.gate_id, beat.counters.notices_refused):
            return f"{says}: it REFUSED the notice (not signed by the policy key this gate trusts)"
        if (beat.policy_version or 0) >= version and beat.trading_state != HALTED:
            return f"{says}: a newer policy that is not halted replaced v{version}"
        return says


async def halt(
    nats_url: str,
    redis_url: str | None,
    signing_key: Path,
    operator: str,
    reason: str,
    inbox_prefix: str = "_INBOX",
    timeout_s: float = 5.0,
    listen_s: float = 3.0,
    confirm_s: float = 10.0,
    gate_key: PolicyVerifier | None = None,
) -> HaltResult:
    """`gate_key`: the gates' public key (their audit key); with it only heartbeats a gate signed count."""
    try:
        signer = PolicySigner.load(signing_key)
    except Exception as exc:  # a missing, unreadable or malformed key file: say which, never its content
        return _failed(f"cannot load the signing key {signing_key} ({type(exc).__name__})")
    refusals = _Refusals()
    try:
        nc = await connect_once(nats_url, inbox_prefix, timeout_s, "cio-break-glass", refusals.on_error)
    except Exception as exc:
        return _failed(f"NATS unreachable ({redact_text(repr(exc))[:300]}): nothing was halted")
    try:
        return await _break_glass(
            nc, refusals, redis_url, signer, operator, reason, timeout_s, listen_s, confirm_s, gate_key
        )
    finally:
        await nc.close()


async def _break_glass(
    nc: NATS,
    refusals: _Refusals,
    redis_url: str | None,
    signer: PolicySigner,
    operator: str,
    reason: str,
    timeout_s: float,
    listen_s: float,
    confirm_s: float,
    gate_key: PolicyVerifier | None = None,
) -> HaltResult:
    lines: list[str] = []
    fleet = _Fleet(gate_key)
    await nc.subscribe(GATE_HEARTBEAT, cb=fleet.on_beat)
    await flush_ordered(nc, timeout_s)
    if refusals.about(GATE_HEARTBEAT):
        return _failed(
            f"NATS refused this identity a subscription to {GATE_HEARTBEAT}, so no gate could confirm the halt "
            "and nothing was sent: use the `control` identity (docs/canary.md)"
        )
    await asyncio.sleep(listen_s)
    heard = sorted(fleet.beats)
    lines.append(
        f"heard {len(heard)} gate(s) beating within {listen_s:g} s: {', '.join(heard) or 'none'}"
        " (these must confirm; a gate that is stuck or cut off from NATS does not beat and is not counted)"
    )

    by = f"break-glass:{operator}: {reason}"[:200]
    version, persisted = None, False
    verifier = PolicyVerifier([signer.public_raw])
    if redis_url:
        floor = fleet.floor(verifier)
        version, persisted, said = await _through_redis(nc, refusals, redis_url, signer, by, timeout_s, floor)
        lines.append(said)
    if version is None:
        version = fleet.newest_version(verifier) + 1
        if not heard:
            return _failed("no gate is beating and Redis was not written: nothing was halted", lines)

    notice = TradingStateNotice(
        version=version, scope="global", key="", state=TradingState.HALTED, reason=reason, by=by, at=datetime.now(UTC)
    ).signed_with(signer)
    payload = notice.model_dump_json().encode()
    fleet.mark_sent()
    before = len(refusals.seen)
    await nc.publish(TRADING_STATE, payload)
    await flush_ordered(nc, timeout_s)
    refused = refusals.about(TRADING_STATE, before)
    if refused:
        lines.append(f"NATS REFUSED the notice on {TRADING_STATE} for this identity ({refused[0]})")
        if not persisted:
            return _failed(
                f"NATS refused this identity's publish on {TRADING_STATE}: nothing was halted and the gates keep "
                "trading; use the `control` identity (docs/canary.md)",
                lines,
                version,
            )
    else:
        lines.append(f"signed halt notice for v{version} sent on {TRADING_STATE}")

    confirmed, waiting = await _await_confirmation(nc, fleet, version, payload if not refused else None, confirm_s)
    if not persisted:
        lines.append(
            "Redis NOT written: the halt lives only in the gates' memory; a gate that restarts comes back without "
            "it. When the control plane is back, set the kill switch there at once (docs/canary.md)"
        )
    total = len(confirmed) + len(waiting)
    if not total:
        lines.append("no gate is beating: none could confirm (gates that start will read the halt from Redis)")
    summary = f"{len(confirmed)}/{total} gate(s) heard confirm halted at v{version}"
    summary += f" ({', '.join(confirmed)})" if confirmed else ""
    if waiting:
        summary += f"; within {confirm_s:g} s NOT confirmed by: " + "; ".join(f"{g}: {w}" for g, w in waiting.items())
    if fleet.unsigned:
        summary += f"; {fleet.unsigned} heartbeat(s) not signed by a gate ignored (a gate's NATS password in use?)"
    lines.append(summary)
    outcome = Outcome.HALTED if total and not waiting and not refused else Outcome.UNCONFIRMED
    return HaltResult(outcome, version, persisted, tuple(confirmed), waiting, tuple(lines))


async def _await_confirmation(
    nc: NATS, fleet: _Fleet, version: int, resend: bytes | None, confirm_s: float
) -> tuple[list[str], dict[str, str]]:
    """Until every gate heard (including any that starts beating meanwhile) confirms, or the deadline. The
    notice is re-sent about once a second: a gate that was reconnecting, or started since, gets it too."""
    deadline = time.monotonic() + confirm_s
    next_send = time.monotonic() + 1.0
    while True:
        confirmed, waiting = fleet.split(version)
        now = time.monotonic()
        if (confirmed and not waiting) or now >= deadline:
            return confirmed, waiting
        if resend is not None and waiting and now >= next_send:
            await nc.publish(TRADING_STATE, resend)
            next_send = now + 1.0
        fleet.changed.clear()
        wake = min(deadline, next_send) if resend is not None else deadline
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fleet.changed.wait(), max(wake - now, 0.01))


async def _through_redis(
    nc: NATS, refusals: _Refusals, redis_url: str, signer: PolicySigner, by: str, timeout_s: float, floor: int
) -> tuple[int | None, bool, str]:
    """The halted version Redis now runs (written by us or already there), whether Redis holds it, and what
    happened; (None, False, why) when Redis could not be used. Nothing is built on a document below the gates'
    version floor (an older policy put back): every gate would refuse it, or it would bring the old spec back."""
    verifier = PolicyVerifier([signer.public_raw])
    # Through Sentinel when `CIO_REDIS_SENTINELS` is set (docs/redis-ha.md): the break glass finds the primary too.
    redis = async_client(
        redis_url, SentinelConfig.from_env(), socket_connect_timeout=timeout_s, socket_timeout=timeout_s
    )
    try:
        for _ in range(5):  # another writer may commit between our read and our write: read again
            raw = await read_active_raw(redis)
            if raw is None:
                return None, False, "Redis holds no policy: not written"
            current = PolicyDocument.model_validate_json(raw)
            if not (current.checksum_matches() and current.verified_by(verifier)):
                return None, False, "Redis holds a policy this key did not sign (the wrong key?): not written"
            if current.version < floor:
                return (
                    None,
                    False,
                    f"Redis holds v{current.version} but the gates know v{floor} was activated (an older policy was "
                    'put back, docs/policy.md "No rollback"): not written; halting by notice above the floor',
                )
            if current.spec.global_rules.trading_state is TradingState.HALTED:
                return current.version, True, f"Redis: already halted in v{current.version}"
            document = build_document(halted(current.spec), current.version + 1, by, signer=signer)
            if not await write_active_policy(redis, document):
                continue
            said = f"Redis: v{document.version} (halted) written, signed, activated_by {by!r}"
            before = len(refusals.seen)
            update = PolicyUpdate(version=document.version, checksum=document.checksum, seal=document.seal())
            await nc.publish(STRATEGIST_UPDATE, update.model_dump_json().encode())
            await flush_ordered(nc, timeout_s)
            if refusals.about(STRATEGIST_UPDATE, before):
                said += f"; NATS refused {STRATEGIST_UPDATE} (gates read it on their next poll)"
            return document.version, True, said
        return None, False, "Redis: other writers kept committing newer versions: not written"
    except (RedisError, OSError, ValidationError) as exc:
        return None, False, f"Redis not usable ({type(exc).__name__}: {redact_text(str(exc))[:200]})"
    finally:
        await redis.aclose()


def _failed(why: str, lines: Iterable[str] = (), version: int | None = None) -> HaltResult:
    return HaltResult(Outcome.FAILED, version, False, lines=(*lines, why))


def run(*args: object, **kwargs: object) -> HaltResult:
    return asyncio.run(halt(*args, **kwargs))  # type: ignore[arg-type]
