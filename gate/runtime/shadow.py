"""Shadow mode (`CIO_GATE_SHADOW`, docs/deploy.md "Shadow mode"): what a shadow gate keeps of a decision.

A shadow gate decides every intent exactly as a serving gate would, and audits it (marked `shadow`), but nothing
it decides may reach anyone who would act on it: no signal (the trade engine), no reply (the old CIO answers the
strategy; two answers to one request and the faster one wins), no envelope on the decision subjects (strategies
and dashboards read them), no promotion notice (serving gates would count the shadow's approvals against their
shared rate limits and duplicate suppression). What the shadow would have promoted is still recorded in its own
state, so its later decisions (duplicates, rates) are the ones a serving gate would make.
"""

import logging
from dataclasses import replace

from nats.aio.client import Client as NATS
from nats.js.errors import BadRequestError

from cio_kernel.shadow import shadow_signal_stream_config
from gate.config import GateSettings
from gate.runtime.pipeline import Outcome

log = logging.getLogger(__name__)


def shadowed(outcome: Outcome) -> Outcome:
    """`outcome` with only its audit event left to send."""
    return replace(outcome, reply=None, signal=None, promotion=None, decision_subject="")


async def record_promotions(nc: NATS, settings: GateSettings) -> bool:
    """Make sure the serving CIO's promotions are recorded (the report compares them with this gate's decisions).
    A failure is logged, never fatal: it costs the report, not a decision. True when the stream is there."""
    js = nc.jetstream()
    config = shadow_signal_stream_config(
        settings.shadow_signal_stream, settings.signal_subject_prefix, settings.shadow_signal_max_age_s
    )
    try:
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.stream_info(settings.shadow_signal_stream)  # there already, perhaps as an operator made it
    except Exception as exc:
        log.error(
            "shadow gate: promotions on %s.> are not recorded in stream %s (%r): shadow_report will find nothing "
            "promoted to compare with; create the stream (docs/deploy.md, Shadow mode)",
            settings.signal_subject_prefix,
            settings.shadow_signal_stream,
            exc,
        )
        return False
    return True
