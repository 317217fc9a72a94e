"""The canary's two probes: `cio.gate.ping` over NATS (the reply is the gate's latest heartbeat) and the control
plane's `GET /api/health`. Each has a timeout and reports why it failed instead of raising.

Whoever holds a gate's NATS password can answer `cio.gate.ping` too, so with the gates' public key
(`CIO_AUDIT_PUBLIC_KEY[_FILE]`) the canary takes only an answer signed by a gate (cio_kernel/heartbeat_seal.py):
it waits for the first one that verifies, ignoring the rest, so a fake "all is well" neither passes for a gate
nor crowds a real gate's answer out. Without the key it takes the first answer, as before."""

import asyncio
import urllib.error
import urllib.request

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from pydantic import ValidationError

from canary.connection import canary_credentials, connect_once
from cio_kernel import heartbeat_seal
from cio_kernel.contracts.heartbeat import GateHeartbeat
from cio_kernel.policy.signing import PolicyVerifier
from cio_kernel.redaction import redact_text
from cio_kernel.subjects import GATE_PING


async def _first_signed(nc: NATS, verifier: PolicyVerifier, timeout_s: float) -> GateHeartbeat | str:
    """The first answer a trusted gate key verifies, or why there was none."""
    answers: asyncio.Queue[bytes] = asyncio.Queue()

    async def heard(msg: Msg) -> None:
        answers.put_nowait(msg.data)

    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, cb=heard)
    refused = 0
    try:
        await nc.publish(GATE_PING, b"", reply=inbox)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (left := deadline - loop.time()) > 0:
            try:
                data = await asyncio.wait_for(answers.get(), left)
            except TimeoutError:
                break
            try:
                body = orjson.loads(data)
                beat = GateHeartbeat.model_validate(body)
            except (ValueError, orjson.JSONDecodeError):
                refused += 1
                continue
            if isinstance(body, dict) and heartbeat_seal.verify(body, verifier):
                return beat
            refused += 1
    finally:
        await sub.unsubscribe()
    if refused:
        return f"no answer signed by a gate within {timeout_s:g} s ({refused} unsigned or badly signed answer(s))"
    return f"no answer within {timeout_s:g} s (a gate that is stuck stays silent)"


async def ping_gate(
    nats_url: str, inbox_prefix: str, timeout_s: float, verifier: PolicyVerifier | None = None
) -> tuple[GateHeartbeat | None, str | None]:
    try:
        nc = await connect_once(nats_url, inbox_prefix, timeout_s, "cio-canary", _quiet, canary_credentials())
    except Exception as exc:
        return None, f"NATS unreachable ({redact_text(repr(exc))})"
    try:
        if verifier is not None:
            found = await _first_signed(nc, verifier, timeout_s)
            return (found, None) if isinstance(found, GateHeartbeat) else (None, found)
        reply = await nc.request(GATE_PING, b"", timeout=timeout_s)
        return GateHeartbeat.model_validate_json(reply.data), None
    except NoRespondersError:
        return None, "no gate is subscribed (no responders)"
    except TimeoutError:
        return None, f"no answer within {timeout_s:g} s (a gate that is stuck stays silent)"
    except ValidationError:
        return None, "the answer was not a gate heartbeat"
    except Exception as exc:
        return None, f"ping failed ({type(exc).__name__})"
    finally:
        await nc.close()


async def _quiet(exc: Exception) -> None:
    return None


def check_health(url: str, timeout_s: float) -> tuple[int | None, str | None]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 (a configured URL)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return response.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except Exception as exc:
        return None, f"unreachable ({type(exc).__name__}: {redact_text(str(exc))[:200]})"
