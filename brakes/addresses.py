"""The client address the brakes count by.

By default the TCP peer (`REMOTE_ADDR`) and nothing else: `X-Forwarded-For` is whatever the client wrote. Behind
a reverse proxy or ingress, `CIO_TRUSTED_PROXIES` (CIDRs) names the proxies: while the hop in hand is one of
them, the next hop to the left in `X-Forwarded-For` (the address that proxy saw) is taken instead, so the client
is the right-most address no trusted proxy vouches for; whatever a client prepends itself stays to the left of it
and is never read. IPv6 clients are counted by their /64, which one subscriber usually holds whole.
"""

import functools
import ipaddress
from typing import Any

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN = "unknown"


def parse_networks(raw: str) -> tuple[Network, ...]:
    """`10.0.0.0/8, 192.168.1.7`: CIDRs or single addresses; raises ValueError on anything else."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in raw.split(",") if item.strip())


@functools.lru_cache(maxsize=8)
def _networks(raw: str) -> tuple[Network, ...]:
    return parse_networks(raw)


def _parse(hop: str) -> IPAddress | None:
    """One hop: a bare address, `1.2.3.4:port` or `[v6]:port`; None for anything else."""
    hop = hop.strip()
    if hop.startswith("["):
        hop = hop[1 : hop.find("]")] if "]" in hop else ""
    elif hop.count(":") == 1:
        hop = hop.split(":")[0]
    try:
        address = ipaddress.ip_address(hop)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _key(address: IPAddress) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


def client_address(peer: str | None, forwarded_for: str | None, trusted: str | None = None) -> str:
    """The address to count `peer`'s request under (`trusted`: the CIDR list, default the setting)."""
    current = _parse(peer or "")
    if current is None:
        return UNKNOWN
    networks = _networks(settings.CIO_TRUSTED_PROXIES if trusted is None else trusted)
    hops = [hop for hop in (forwarded_for or "").split(",") if hop.strip()]
    while hops and any(current in network for network in networks):
        previous = _parse(hops.pop())
        if previous is None:
            break  # a trusted proxy writes addresses; anything else is not evidence, so stop at that proxy
        current = previous
    return _key(current)


def of_request(request: Any) -> str:
    """A Django request's client (several `X-Forwarded-For` headers arrive joined with commas)."""
    return client_address(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"))


def of_scope(scope: dict[str, Any]) -> str:
    """An ASGI HTTP scope's client (the MCP app, which Django never sees)."""
    client = scope.get("client")
    forwarded = [value.decode("latin-1") for name, value in scope.get("headers", []) if name == b"x-forwarded-for"]
    return client_address(client[0] if client else None, ",".join(forwarded) or None)
