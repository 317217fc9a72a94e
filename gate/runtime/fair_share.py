"""Each strategy's share of a gate: its own rate and its own slice of the queue.

Intents are decided one at a time in arrival order, so without a share per strategy one strategy's flood (or
its expensive intents) sits in front of every other strategy's intents. Each strategy key has a token bucket of
*work units*: an intent costs one unit plus one per 512 bytes (what deciding it costs grows with its size),
the bucket refills at `strategy_budget_per_s` and holds at most `strategy_budget_burst`. The burst is the
strategy's slice of the queue: however fast it publishes, at most that much of its work waits in front of
others. An intent its bucket cannot pay for is answered at once, unparsed, RETRY_SAFE with
`STRATEGY_OVER_BUDGET` (shedding costs a fraction of deciding), and audited like every answer.

Who pays is found without parsing (`share_key`):
- `cio.intent.trading.<key>`: the strategy key. A strategy with an identity of its own is the only one that can
  publish there, so nobody else can spend its share. A token that is not a key (`Momentum-Pulse`) is a claim
  (`claimed:<key>`): the shared identity may publish on it, and folding it to the key would let it spend the
  share of the strategy that owns `cio.intent.trading.momentum_pulse`.
- any other intake subject: the key of the first `"strategy_id": "<id>"` in the bytes, in a bucket of its own
  kind (`claimed:<key>`), so a claim on a shared subject never spends the share of a strategy that publishes
  on its own subject. (The shared strategy identity may claim any id: its publishers share the gate as fairly as
  their claims are honest, which is no more than they could already do by sending intents in that name.)
- nothing readable: one shared bucket.

Every key but a strategy's own subject can be minted by the shared identity: a new claimed id (or subject token)
per intent gets a fresh bucket each time, and once the table is full every newcomer shares the one overflow
bucket the flood keeps empty. So keys the policy does not name also pay, together, one *open* bucket
(`strategy_budget_open_share` times one strategy's share). Keys it names keep their buckets in a table of their
own (`protected`), bounded by the policy, that no minted key reaches: a strategy marked `own_identity` on its own
subject, and a listed strategy of the shared identity (its subject token or the id in its body). A flood under
made-up ids then sheds only made-up ids; one claiming a listed strategy's id spends that strategy's share (the
shared identity may speak for it anyway), never another's.
"""

import re

from cio_kernel.contracts.identity import STRATEGY_SUBJECT_PREFIX, IdentityError, strategy_key

SHARED = ""
CLAIMED = "claimed:"  # the prefix of a key read from the body, which any publisher on a shared subject can write
_CLAIM = re.compile(rb'"strategy_id"\s*:\s*"([A-Za-z0-9 _.\-]{1,200})"')
_PREFIX_LEN = len(STRATEGY_SUBJECT_PREFIX)


def intent_cost(size: int) -> float:
    """Work units for an intent of `size` bytes: 1 for a normal intent, up to 129 for the largest allowed."""
    return 1.0 + (size >> 9)


def share_key(subject: str, data: bytes) -> str:
    """The bucket an intent is charged to, found in the subject or with one bounded search of the bytes."""
    if subject.startswith(STRATEGY_SUBJECT_PREFIX):
        token = subject[_PREFIX_LEN:]
        if "." not in token:
            try:
                key = strategy_key(token)
            except IdentityError:
                return SHARED
            # Only the exact subject `cio.intent.trading.<key>` is a strategy's own (NATS permissions are exact):
            # anyone may publish on `cio.intent.trading.Momentum-Pulse`, which is a claim like any other.
            return key if key == token else CLAIMED + key
    found = _CLAIM.search(data)
    if found is None:
        return SHARED
    raw_id = found.group(1)
    key = _claimed.get(raw_id)
    if key is None:
        if len(_claimed) >= 4096:
            _claimed.clear()
        try:
            key = CLAIMED + strategy_key(raw_id.decode("ascii"))
        except IdentityError:
            key = SHARED
        _claimed[raw_id] = key
    return key


_claimed: dict[bytes, str] = {}  # the same few ids arrive on every intent


class FairShare:
    """Token buckets per share key, refilled on the gate's monotonic clock (no timers, no I/O).

    Keys anyone with the shared identity can mint (a claimed id, a subject token) that the policy does not name
    are also charged together to one *open* bucket: a publisher that changes its claimed id per intent gets a
    fresh bucket each time, so only the sum of what all those keys spend can be bounded. A key the policy names
    (`protected=True`, decided by the pipeline) is charged only to its bucket, kept in a table of its own: a flood
    of minted keys can neither fill that table nor drain what it pays from.
    """

    __slots__ = ("_buckets", "_burst", "_max_buckets", "_next_sweep", "_open", "_own", "_rate")

    def __init__(self, rate_per_s: float, burst: float, max_buckets: int = 4096, open_share: float = 1.5) -> None:
        self._rate = rate_per_s
        self._burst = burst
        self._max_buckets = max_buckets
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, last refill]
        self._own: dict[str, list[float]] = {}  # bounded by the strategies the policy names
        self._open = _Bucket(rate_per_s * open_share, burst * open_share)
        self._next_sweep = float("-inf")  # a full table is swept at most once per refill time

    def admit(self, key: str, cost: float, now: float, protected: bool = False) -> bool:
        """Charge `cost` to `key`'s bucket (and, unless `protected`, to the open bucket); False, nothing charged,
        when either cannot pay for it."""
        if protected:
            bucket = self._own.get(key)
            if bucket is None:
                if len(self._own) >= self._max_buckets:
                    self._own.clear()  # only a policy naming thousands of strategies gets here
                bucket = self._own[key] = [self._burst, now]
            return self._charge(bucket, cost, now)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_buckets:
                if now >= self._next_sweep:
                    # A sweep walks the whole table: a stream of new keys must not buy one per intent.
                    self._forget_full(now)
                    self._next_sweep = now + min(self._burst / self._rate, 60.0)
                if len(self._buckets) >= self._max_buckets:
                    key = SHARED  # a flood of new keys shares one bucket instead of growing the table
            bucket = self._buckets.setdefault(key, [self._burst, now])
        if not self._open.can_pay(cost, now):
            return False
        if not self._charge(bucket, cost, now):
            return False
        self._open.tokens -= cost
        return True

    def _charge(self, bucket: list[float], cost: float, now: float) -> bool:
        tokens = bucket[0] + (now - bucket[1]) * self._rate
        if tokens > self._burst:
            tokens = self._burst
        bucket[1] = now
        if tokens < cost:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - cost
        return True

    def _forget_full(self, now: float) -> None:
        """A bucket that has refilled to its burst is the same as a new one: drop those."""
        rate, burst = self._rate, self._burst
        full = [k for k, (tokens, last) in self._buckets.items() if tokens + (now - last) * rate >= burst]
        for k in full:
            del self._buckets[k]


class _Bucket:
    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst, self.tokens, self.last = rate, burst, burst, float("-inf")

    def can_pay(self, cost: float, now: float) -> bool:
        """Refill to `now` and say whether `cost` fits (the caller takes it off `tokens` once it is charged)."""
        tokens = self.tokens + (now - self.last) * self.rate if now > self.last else self.tokens
        self.tokens = tokens if tokens < self.burst else self.burst
        self.last = now
        return self.tokens >= cost
