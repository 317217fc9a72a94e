"""A policy document ready for the hot path: validated once, effective limits memoised per (strategy, symbol)."""

from cio_kernel.policy.document import PolicyDocument
from cio_kernel.policy.spec import GlobalRules
from gate.policy.resolve import EffectiveLimits, resolve_limits

_MAX_CACHED_PAIRS = 50_000


class CompiledPolicy:
    __slots__ = ("_cache", "document", "global_rules", "listed_shared_keys", "own_identity_keys")

    def __init__(self, document: PolicyDocument) -> None:
        self.document = document
        # Read on every decision, and the document is frozen: held here rather than looked up through it each time.
        self.global_rules: GlobalRules = document.spec.global_rules
        self._cache: dict[tuple[str, str], EffectiveLimits] = {}
        # Strategies whose own subject proves who sent an intent: their share of the gate is kept apart from what
        # the shared identity can reach (gate/runtime/fair_share.py).
        self.own_identity_keys = frozenset(k for k, rules in document.spec.strategies.items() if rules.own_identity)
        # Strategies the policy names that publish with the shared identity: each keeps a share of its own, which
        # ids nobody listed (minted per intent by a flood) cannot reach.
        self.listed_shared_keys = frozenset(document.spec.strategies) - self.own_identity_keys

    @property
    def version(self) -> int:
        return self.document.version

    @property
    def checksum(self) -> str:
        return self.document.checksum

    def limits_for(self, strategy_key: str, symbol: str) -> EffectiveLimits:
        """By keys (`Intent.strategy_key`, `Intent.symbol`): one cache entry, one answer per identity."""
        key = (strategy_key, symbol)
        limits = self._cache.get(key)
        if limits is None:
            if len(self._cache) >= _MAX_CACHED_PAIRS:
                self._cache.clear()  # bounded memory against a flood of made-up strategy ids
            limits = self._cache[key] = resolve_limits(self.document.spec, strategy_key, symbol)
        return limits
