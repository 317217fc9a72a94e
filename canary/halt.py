"""The nuclear option (docs/canary.md, "Break glass"): halt all trading from outside the cluster, with the
break-glass credentials, when the control plane is unreachable.

1. With Redis reachable: read `policy:active`, check it is the control plane's (signed, checksum intact), write
   the same spec with `global.trading_state = halted` as the next version, signed with the break-glass copy of the
   policy signing key, through the same check-and-set every activation uses, then tell the gates on
   `cio.strategist.update`. `activated_by` records `break-glass:<operator>: <reason>`.
2. Without Redis: send the signed kill-switch notice on `cio.trading.state` (what the control plane does when
   Redis is down); every gate halts at once and holds the halt in memory until a newer policy version arrives,
   so the first thing to do when the control plane is back is to set the kill switch there (it makes it durable).

Either way the act is audited when the control plane comes back: its reconciler adopts the version Redis runs
(recorded as "adopted from Redis: activated by break-glass:…"), and a notice-only halt shows in every gate's
heartbeat (`trading_state`) and log. Only a person releases it, through the control plane, as always."""

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nats
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from redis.exceptions import RedisError

from cio_kernel.contracts.heartbeat import GateHeartbeat
from cio_kernel.contracts.trading_state_notice import TradingStateNotice
from cio_kernel.nats_flush import flush_ordered
from cio_kernel.policy.document import PolicyDocument
from cio_kernel.policy.publication import GatesNotNotifiedError, NewerVersionActiveError, publish_policy
from cio_kernel.policy.signing import PolicySigner, PolicyVerifier
from cio_kernel.policy.spec import PolicySpec, TradingState
from cio_kernel.policy.store import build_document, read_active_raw
from cio_kernel.subjects import GATE_PING, TRADING_STATE


@dataclass(frozen=True)
class HaltResult:
    how: str  # "redis" (a new signed version) or "notice" (the signed NATS kill switch), or "" when it failed
    version: int | None
    message: str


def halted(spec: PolicySpec) -> PolicySpec:
    raw = spec.model_dump(mode="json", by_alias=True)
    raw["global"]["trading_state"] = TradingState.HALTED.value
    return PolicySpec.parse(raw)


async def halt(
    nats_url: str,
    redis_url: str | None,
    signing_key: Path,
    operator: str,
    reason: str,
    inbox_prefix: str = "_INBOX",
    timeout_s: float = 5.0,
) -> HaltResult:
    signer = PolicySigner.load(signing_key)
    verifier = PolicyVerifier([signer.public_raw])
    by = f"break-glass:{operator}: {reason}"[:200]
    nc = await nats.connect(
        nats_url,
        connect_timeout=timeout_s,
        allow_reconnect=False,
        max_reconnect_attempts=1,
        inbox_prefix=inbox_prefix,
        name="cio-break-glass",
    )
    try:
        if redis_url:
            done = await _through_redis(nc, redis_url, signer, verifier, by, timeout_s)
            if done is not None:
                return done
        return await _through_notice(nc, signer, operator, reason, by, timeout_s)
    finally:
        await nc.close()


async def _through_redis(
    nc: NATS, redis_url: str, signer: PolicySigner, verifier: PolicyVerifier, by: str, timeout_s: float
) -> HaltResult | None:
    redis = aioredis.Redis.from_url(redis_url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        for _ in range(5):  # another writer may commit between our read and our write: read again
            raw = await read_active_raw(redis)
            if raw is None:
                return None  # nothing to halt from: the notice reaches the gates anyway
            current = PolicyDocument.model_validate_json(raw)
            if not (current.checksum_matches() and current.verified_by(verifier)):
                return None  # not a policy this key signed: leave it, halt by notice
            if current.spec.global_rules.trading_state is TradingState.HALTED:
                return HaltResult("redis", current.version, f"already halted in v{current.version}")
            if await _gate_floor(nc, verifier, timeout_s) > current.version:
                # The gates know a newer version than Redis holds: an older policy was put back. A version built on
                # it would be refused by every gate (below their floor) or bring its old spec back: use the notice.
                return None
            document = build_document(halted(current.spec), current.version + 1, by, signer=signer)
            try:
                await publish_policy(redis, nc, document, within_s=timeout_s)
            except NewerVersionActiveError:
                continue
            except GatesNotNotifiedError:
                return HaltResult(
                    "redis",
                    document.version,
                    f"v{document.version} halted in Redis; gates pick it up "
                    "on their next poll (the NATS notice failed)",
                )
            return HaltResult("redis", document.version, f"v{document.version} (halted) written and announced")
        return None
    except (RedisError, OSError):
        return None
    finally:
        await redis.aclose()


async def _through_notice(
    nc: NATS, signer: PolicySigner, operator: str, reason: str, by: str, timeout_s: float
) -> HaltResult:
    try:
        reply = await nc.request(GATE_PING, b"", timeout=timeout_s)
        beat = GateHeartbeat.model_validate_json(reply.data)
    except Exception as exc:
        # No gate to halt (none answers), and a notice is not kept for gates that start later.
        return HaltResult("", None, f"no gate answered cio.gate.ping ({type(exc).__name__}): nothing was halted")
    floor = _verified_floor(beat, PolicyVerifier([signer.public_raw]))
    # The next version: every gate still on the running policy (or below its floor) applies it; the control
    # plane's next version (which must carry the halt, docs/canary.md) supersedes it.
    version = max(beat.policy_version or 0, floor) + 1
    notice = TradingStateNotice(
        version=version,
        scope="global",
        key="",
        state=TradingState.HALTED,
        reason=reason,
        by=by,
        at=datetime.now(UTC),
    ).signed_with(signer)
    await nc.publish(TRADING_STATE, notice.model_dump_json().encode())
    await flush_ordered(nc, timeout_s)
    return HaltResult("notice", version, f"signed halt sent on {TRADING_STATE} (Redis not written: {operator})")


async def _gate_floor(nc: NATS, verifier: PolicyVerifier, timeout_s: float) -> int:
    """The version floor a gate reports (docs/policy.md, "No rollback"), if one answers and it verifies; else 0."""
    try:
        reply = await nc.request(GATE_PING, b"", timeout=timeout_s)
        return _verified_floor(GateHeartbeat.model_validate_json(reply.data), verifier)
    except Exception:
        return 0


def _verified_floor(beat: GateHeartbeat, verifier: PolicyVerifier) -> int:
    floor = beat.policy_floor
    return floor.version if floor is not None and floor.verified_by(verifier) else 0


def run(*args: object, **kwargs: object) -> HaltResult:
    return asyncio.run(halt(*args, **kwargs))  # type: ignore[arg-type]
