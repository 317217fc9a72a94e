"""DRF's request-rate throttles, keyed by the same client address as the brakes: DRF's own `get_ident` believes
any `X-Forwarded-For` a client sends, which would let it dodge its limit or spend someone else's."""

from typing import Any

from rest_framework import throttling

from brakes import addresses


class AnonRateThrottle(throttling.AnonRateThrottle):
    def get_ident(self, request: Any) -> str:
        return addresses.of_request(request)


class UserRateThrottle(throttling.UserRateThrottle):
    def get_ident(self, request: Any) -> str:
        return addresses.of_request(request)
