"""The control plane's link to what the gates see: `policy:active`, heartbeats and latches in Redis, and the
NATS notices that make gates act at once.

Every call opens short-lived connections with tight timeouts (`CIO_ACTIVATION_TIMEOUT_S`): a web request must
fail quickly and clearly when Redis or NATS is away, never hang. Redis is the commit point of an activation:
NATS is connected first (so an unreachable NATS fails before anything changed), then `policy:active` is
written with the check-and-set, then `cio.strategist.update` is sent. What Redis holds is read back *verified*:
a document the control plane did not sign is reported as untrusted (and replaced by the next activation), never
taken as the active policy; so is one it did sign that is older than the newest it activated (an older policy
put back: `policies.activation.restore_floor` writes the newest again and raises a critical alert).
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from django.conf import settings
from nats.aio.client import Client as NATS
from pydantic import ValidationError

from cio_kernel.alerting import make_alert
from cio_kernel.contracts.alert import Alert, Severity, alert_subject
from cio_kernel.contracts.latch import LatchNotice, LatchRecord
from cio_kernel.contracts.trading_state_notice import TradingStateNotice
from cio_kernel.heartbeats import GateBeats
from cio_kernel.heartbeats import read_gate_heartbeats as read_heartbeats
from cio_kernel.nats_flush import flush_ordered
from cio_kernel.policy.document import PolicyDocument
from cio_kernel.policy.latch_store import LatchRead, read_latches, release_latch
from cio_kernel.policy.publication import GatesNotNotifiedError, NewerVersionActiveError, publish_policy
from cio_kernel.policy.signing import PolicySigner, PolicyVerifier
from cio_kernel.policy.store import read_active_raw
from cio_kernel.subjects import RISK_LATCH, TRADING_STATE
from core.nats_connect import connect_once
from core.redis_clients import async_redis

__all__ = ["LiveUnavailableError", "NewerVersionActiveError", "NoticeNotSentError"]

CONTROL_PLANE = "control-plane"  # the source of the alerts the control plane raises


class LiveUnavailableError(Exception):
    """Redis or NATS could not be reached (or the signing key is missing): nothing was changed."""


class NoticeNotSentError(Exception):
    """Redis holds the new version (so it is live: gates confirm it on their next poll) but the NATS notice
    could not be sent after all."""


async def _ignore(exc: Exception) -> None:
    return None


def _timeout() -> float:
    return float(settings.CIO_ACTIVATION_TIMEOUT_S)


def _redis() -> aioredis.Redis:
    return async_redis(settings.REDIS_URL, _timeout())


async def _nats() -> NATS:
    try:
        # A finite attempt count: with 0, nats-py retries forever and ignores the connect timeout.
        # Failures are raised with their cause; `_ignore`: no traceback per attempt.
        return await connect_once("cio-control-plane", _timeout(), reconnect_time_wait=0.1, error_cb=_ignore)
    except Exception as exc:
        raise LiveUnavailableError(f"NATS is unreachable: {exc!r}") from exc


def _run[T](work: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(work())


# -- keys -----------------------------------------------------------------------------------------------------------
def policy_signer() -> PolicySigner:
    """The control plane's signing key. Outside production a missing key pair is created in the state folder."""
    path = Path(settings.CIO_POLICY_SIGNING_KEY_FILE)
    if path.exists():
        return PolicySigner.load(path)
    if settings.CIO_PRODUCTION:
        raise LiveUnavailableError(f"no policy signing key at {path} (CIO_POLICY_SIGNING_KEY_FILE)")
    return PolicySigner.load_or_create(path.parent)


def policy_verifier() -> PolicyVerifier:
    return PolicyVerifier([policy_signer().public_raw])


def gate_verifier() -> PolicyVerifier | None:
    """The gates' public key(s) (their audit key: heartbeats, latch trips, checkpoints); None when none is set."""
    return PolicyVerifier.from_config(settings.CIO_AUDIT_PUBLIC_KEY, settings.CIO_AUDIT_PUBLIC_KEY_FILE)


# -- the active policy ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LiveDocument:
    """What `policy:active` holds: nothing, a document this control plane signed, or something untrusted."""

    raw: bytes | None
    document: PolicyDocument | None  # set only when parsed, checksum-correct, signed by our key and not put back
    problem: str | None = None  # why `raw` is untrusted
    replayed: PolicyDocument | None = None  # a genuine document older than the floor the caller gave

    @property
    def version(self) -> int:
        return self.document.version if self.document is not None else 0


def read_live(floor: int = 0) -> LiveDocument:
    """What Redis holds; a genuine document older than `floor` (the newest version this control plane activated)
    is untrusted, never the active policy."""

    async def work() -> LiveDocument:
        redis = _redis()
        try:
            raw = await read_active_raw(redis)
        except Exception as exc:
            raise LiveUnavailableError(f"Redis is unreachable: {exc!r}") from exc
        finally:
            await redis.aclose()
        return judge(raw, floor)

    return _run(work)


def judge(raw: bytes | None, floor: int = 0) -> LiveDocument:
    if raw is None:
        return LiveDocument(None, None)
    try:
        document = PolicyDocument.model_validate_json(raw)
    except ValidationError:
        return LiveDocument(raw, None, "policy:active is not a policy document")
    if not document.verified_by(policy_verifier()):
        return LiveDocument(raw, None, f"policy:active v{document.version} is not signed by this control plane")
    if document.version < floor:
        return LiveDocument(
            raw,
            None,
            f"policy:active v{document.version} is older than v{floor}, the newest this control plane activated: "
            "an older policy was put back",
            replayed=document,
        )
    return LiveDocument(raw, document)


def publish_document(document: PolicyDocument, replacing: bytes | None = None) -> str:
    """Commit `document` to Redis and notify the gates; returns "sent", or why the notice failed after the
    commit. Raises `LiveUnavailableError` (nothing changed) or `NewerVersionActiveError` (nothing written)."""

    async def work() -> str:
        nc = await _nats()
        redis = _redis()
        try:
            await publish_policy(redis, nc, document, replacing, _timeout())
        except NewerVersionActiveError:
            raise
        except GatesNotNotifiedError as exc:
            return f"failed: {exc.__cause__!r}"
        except Exception as exc:
            raise LiveUnavailableError(f"Redis is unreachable: {exc!r}") from exc
        else:
            return "sent"
        finally:
            await redis.aclose()
            await nc.close()

    return _run(work)


def send_trading_state_notice(notice: TradingStateNotice) -> None:
    """Tell the gates of a tightened trading state over NATS alone (Redis is away): they apply it at once."""

    async def work() -> None:
        nc = await _nats()
        try:
            await nc.publish(TRADING_STATE, notice.model_dump_json().encode())
            await flush_ordered(nc, _timeout())
        except Exception as exc:
            raise LiveUnavailableError(f"NATS could not take the notice: {exc!r}") from exc
        finally:
            await nc.close()

    _run(work)


def raise_alert(severity: Severity, title: str, detail: dict[str, object]) -> str:
    """Publish an alert on `cio.alert.<severity>` as the control plane; returns "sent" or why it was not (the
    caller records the act whatever happens to the alert)."""
    return publish_alert(make_alert(severity, CONTROL_PLANE, title, detail))


def publish_alert(alert: Alert) -> str:
    """Publish an alert made beforehand (`make_alert`), so the caller keeps its id; "sent" or why it was not."""

    async def work() -> None:
        nc = await _nats()
        try:
            await nc.publish(alert_subject(alert.severity), alert.model_dump_json().encode())
            await flush_ordered(nc, _timeout())
        finally:
            await nc.close()

    try:
        _run(work)
    except Exception as exc:
        return f"failed: {exc!r}"
    return "sent"


# -- heartbeats and latches -----------------------------------------------------------------------------------------
def read_gate_heartbeats(now: float | None = None) -> GateBeats:
    """The gates' heartbeats in Redis, judged (cio_kernel.heartbeats) as of `now` (unix seconds; the clock when
    None): verified live gates, and the rest."""
    verifier = gate_verifier()

    async def work() -> GateBeats:
        redis = async_redis(settings.REDIS_URL, 1)
        try:
            return await read_heartbeats(redis, verifier, now)
        finally:
            await redis.aclose()

    return _run(work)


def read_risk_latches() -> LatchRead:
    """The latches as the gates take them: released only by a release this control plane signed (a record that
    says otherwise is listed in `problems` and shown as holding)."""
    trips, releases = gate_verifier(), policy_verifier()

    async def work() -> LatchRead:
        redis = async_redis(settings.REDIS_URL, 1)
        try:
            return await read_latches(redis, trips, releases)
        finally:
            await redis.aclose()

    return _run(work)


def release_risk_latch(latch: str, at: float, by: str, reason: str) -> tuple[LatchRecord | None, str]:
    """Release a latch in Redis (the commit point), signed with the policy key, and tell the gates; (released record
    or None, notice outcome)."""
    signer, trips = policy_signer(), gate_verifier()  # no key: LiveUnavailableError, before anything is written

    async def work() -> tuple[LatchRecord | None, str]:
        redis = _redis()
        try:
            try:
                released = await release_latch(redis, latch, at, by, reason, signer, trips)
            except Exception as exc:
                raise LiveUnavailableError(f"Redis is unreachable: {exc!r}") from exc
        finally:
            await redis.aclose()
        if released is None:
            return None, "not sent"
        # Gates re-read Redis every few seconds anyway; the notice only makes the release immediate.
        notice = LatchNotice(latch_id=latch, event="released", at=at, by=by)
        try:
            nc = await _nats()
            try:
                await nc.publish(RISK_LATCH, notice.model_dump_json().encode())
                await flush_ordered(nc, _timeout())
            finally:
                await nc.close()
        except Exception as exc:
            return released, f"failed: {exc!r}"
        return released, "sent"

    return _run(work)
