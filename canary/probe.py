"""The canary's two probes: `cio.gate.ping` over NATS (the reply is the gate's latest heartbeat) and the control
plane's `GET /api/health`. Each has a timeout and reports why it failed instead of raising."""

import urllib.error
import urllib.request

from nats.errors import NoRespondersError
from pydantic import ValidationError

from canary.connection import connect_once
from cio_kernel.contracts.heartbeat import GateHeartbeat
from cio_kernel.redaction import redact_text
from cio_kernel.subjects import GATE_PING


async def ping_gate(nats_url: str, inbox_prefix: str, timeout_s: float) -> tuple[GateHeartbeat | None, str | None]:
    try:
        nc = await connect_once(nats_url, inbox_prefix, timeout_s, "cio-canary", _quiet)
    except Exception as exc:
        return None, f"NATS unreachable ({redact_text(repr(exc))})"
    try:
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
