"""The live decisions feed: the ingest sends each stored batch to a Channels group; admin pages follow it over a
websocket (`audit.consumers.DecisionFeedConsumer`). Best effort by design: the records are already stored, so a
feed that is down costs a live view, never a record, and the page says so."""

import logging
import time
from collections.abc import Sequence

from channels.layers import get_channel_layer

from audit.presentation import decision_summary
from audit.records import DecisionRecord

log = logging.getLogger(__name__)

GROUP = "audit.decisions"
_QUIET_S = 60.0  # one log line per minute while the channel layer is away, not one per batch
_last_complaint = 0.0


async def publish_batch(records: Sequence[DecisionRecord]) -> None:
    global _last_complaint
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(GROUP, {"type": "decisions", "decisions": [decision_summary(r) for r in records]})
    except Exception as exc:
        if time.monotonic() - _last_complaint > _QUIET_S:
            _last_complaint = time.monotonic()
            log.warning("live feed: the channel layer did not take a batch (records are stored): %r", exc)
