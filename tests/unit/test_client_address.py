"""Which address the brakes count a request under: the TCP peer unless it is a trusted proxy, then the right-most
X-Forwarded-For hop no trusted proxy vouches for; IPv6 by /64. (Over real HTTP: tests/control_plane/test_brakes.py.)"""

import pytest

from brakes.addresses import UNKNOWN, client_address, parse_networks

INGRESS = "10.0.0.0/8"


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "trusted", "expected"),
    [
        ("203.0.113.7", None, "", "203.0.113.7"),
        ("203.0.113.7", "198.51.100.1", "", "203.0.113.7"),  # no proxy trusted: the header is the client's say-so
        ("203.0.113.7", "198.51.100.1", INGRESS, "203.0.113.7"),  # the peer is no proxy of ours
        ("10.1.2.3", "198.51.100.1", INGRESS, "198.51.100.1"),
        ("10.1.2.3", "1.1.1.1, 2.2.2.2, 198.51.100.1", INGRESS, "198.51.100.1"),  # what the client wrote is ignored
        ("10.1.2.3", "198.51.100.1, 10.4.4.4", INGRESS, "198.51.100.1"),  # two trusted hops
        ("10.1.2.3", "10.9.9.9, 10.4.4.4", INGRESS, "10.9.9.9"),  # every hop trusted: the farthest
        ("10.1.2.3", None, INGRESS, "10.1.2.3"),
        ("10.1.2.3", "198.51.100.1:5555", INGRESS, "198.51.100.1"),
        ("10.1.2.3", "[2001:db8::1]:443", INGRESS, "2001:db8::/64"),
        ("10.1.2.3", "1.1.1.1, not-an-address", INGRESS, "10.1.2.3"),  # garbage: stop at the proxy
        ("10.1.2.3", " , ", INGRESS, "10.1.2.3"),
        ("2001:db8:1:2:aaaa::1", None, "", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", None, "", "2001:db8:1:2::/64"),  # same subscriber, same count
        ("::ffff:203.0.113.7", None, "", "203.0.113.7"),
        (None, "198.51.100.1", INGRESS, UNKNOWN),
        ("", None, "", UNKNOWN),
    ],
)
def test_the_client_address(peer, forwarded_for, trusted, expected):
    assert client_address(peer, forwarded_for, trusted) == expected


def test_trusted_proxies_are_cidrs():
    assert [str(n) for n in parse_networks(" 10.0.0.0/8, 192.168.1.7 ,fd00::/8,")] == [
        "10.0.0.0/8",
        "192.168.1.7/32",
        "fd00::/8",
    ]
    with pytest.raises(ValueError, match=r"ingress\.local"):
        parse_networks("10.0.0.0/8, ingress.local")
