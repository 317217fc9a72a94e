"""The live decisions feed: the ingest announces each stored batch to a Channels group by decision id only; admin
pages follow it over a websocket (`audit.consumers.DecisionFeedConsumer`), which reads those ids back from the
audit store and shows only what the store holds. The channel layer lives in Redis under the `feed` identity
(`asgi*` keys), which anyone holding it can write: a message there is a hint to look, never content to show.
Best effort by design: the records are already stored, so a feed that is down costs a live view, never a
record, and the page says so."""

import itertools
import logging
import os
import time
import uuid
from collections.abc import Sequence

from channels.layers import get_channel_layer

from audit.records import DecisionRecord

log = logging.getLogger(__name__)

GROUP = "audit.decisions"
MAX_IDS = 500  # per message: bounds the store read a message (genuine or planted) can cost each open page
_QUIET_S = 60.0  # one log line per minute while the channel layer is away, not one per batch
_last_complaint = 0.0
# Every message is numbered per publishing process: Channels' Redis layer drops a message silently when a member's
# queue is full, so a follower (the cockpit) sees a gap in `seq` from one `origin` and reloads what it shows.
ORIGIN = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
_sequence = itertools.count(1)


async def publish_batch(records: Sequence[DecisionRecord]) -> None:
    global _last_complaint
    layer = get_channel_layer()
    if layer is None:
        return
    ids = [r.decision_id for r in records]
    try:
        for start in range(0, len(ids), MAX_IDS):
            message = {
                "type": "decisions",
                "ids": ids[start : start + MAX_IDS],
                "origin": ORIGIN,
                "seq": next(_sequence),
            }
            await layer.group_send(GROUP, message)
    except Exception as exc:
        if time.monotonic() - _last_complaint > _QUIET_S:
            _last_complaint = time.monotonic()
            log.warning("live feed: the channel layer did not take a batch (records are stored): %r", exc)
