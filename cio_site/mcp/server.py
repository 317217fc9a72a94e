"""The MCP server: the control plane's capabilities as tools (SPEC §8), with the REST API's permissions.

The tools live in rooms, one per domain (`tools/policies.py`, `tools/audit.py`, `tools/tradeconfig.py`); this
module only wires them to a server. Every tool resolves its caller from the bearer token and delegates to the same
services and selectors as REST and admin, so what an agent may do is what its role may do anywhere: an agent reads
and proposes (and may make a trading state stricter); only a risk officer approves, activates or releases.
Failures come back as tool errors whose text starts with the stable code (`PERMISSION_DENIED: …`, `VAL_ERR: …`)."""

from django.conf import settings
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

from cio_site.mcp.auth import ApiTokenVerifier
from cio_site.mcp.room import Room
from cio_site.mcp.tools import audit, policies, tradeconfig

# In this order in the tool list an agent reads.
ROOMS: tuple[Room, ...] = (policies.room, audit.room, tradeconfig.room)

INSTRUCTIONS = """\
Petrosa CIO: the risk gate and governance control plane of a fleet of trading strategies. Every trade intent is
checked by gates against the active risk policy (a versioned document with global, per-strategy and per-symbol
limits). Use these tools to read the active policy and its history, the gates' status, the decisions they made
(and the trace from a decision to the policy version, the reasoning behind it and its approval), incidents and
alerts, and the trade engine's trading configuration. You may propose changes (policies and trading
configuration); a human risk officer reviews and approves them. Errors start with a stable code such as
PERMISSION_DENIED, VAL_ERR, OUTSIDE_ENVELOPE, NOT_FOUND, FOUR_EYES_VIOLATION or INVALID_TRANSITION, followed by
what to fix."""


def build_server() -> MCPServer:
    public = settings.CIO_MCP_PUBLIC_URL.rstrip("/")
    server = MCPServer(
        name="petrosa-cio",
        title="Petrosa CIO control plane",
        instructions=INSTRUCTIONS,
        token_verifier=ApiTokenVerifier(),
        auth=AuthSettings(issuer_url=public, resource_server_url=f"{public}/mcp", validate_token_resource=False),
    )
    for room in ROOMS:
        room.register(server)
    return server
