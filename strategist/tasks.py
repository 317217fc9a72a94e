"""Celery tasks: a reasoning cycle (scheduled by beat, or asked for by a trigger or an officer) and the thought
outbox's flush. Both are safe to run again: a busy cycle is retried (requests) or skipped (the schedule), a
request runs once, and a thought is stored once per id.

A cycle task proves nothing by itself (the broker's identity can write any message): it carries a documented
kind and, unless scheduled, the id of a `CycleRequest` row; who asked and what the trigger saw come from that row
(`cycle_requests.py`). Anything else is refused, counted, and alerted on."""

import logging
from typing import Any

from celery import shared_task
from django.conf import settings

from strategist import cycle as cycles
from strategist import cycle_requests
from strategist.cycle_requests import TriggerRefusedError
from strategist.lock import CycleBusyError
from strategist.triggers import SCHEDULE, Trigger

log = logging.getLogger(__name__)

RUN_CYCLE = cycle_requests.RUN_CYCLE
FLUSH_THOUGHTS = "strategist.flush_thoughts"


@shared_task(bind=True, name=RUN_CYCLE, max_retries=5)
def run_cycle(
    self: Any,
    trigger: str = SCHEDULE,
    detail: dict[str, Any] | None = None,
    request: str | None = None,
    *args: Any,
    **unknown: Any,
) -> str | None:
    try:
        if args or unknown:  # counted like any other forgery, not lost as a TypeError
            raise cycle_requests.refuse("arguments the task does not take", trigger)
        cycle_requests.screen(trigger, detail, request)
        cycle_requests.precheck(trigger, request)
        cycle = cycles.run_cycle(Trigger(trigger, {}), claim=lambda: cycle_requests.claim(trigger, request))
    except TriggerRefusedError as exc:
        log.warning("cycle task refused: %s", exc.reason)
        return None
    except CycleBusyError as exc:
        if trigger == SCHEDULE:  # the next tick comes anyway; a request must not be lost
            log.info("scheduled cycle skipped: another cycle is running")
            return None
        raise self.retry(exc=exc, countdown=float(settings.CIO_STRATEGIST_BUSY_RETRY_S)) from exc
    return cycle.cycle_id if cycle is not None else None


@shared_task(name=FLUSH_THOUGHTS)
def flush_thoughts() -> int:
    return cycles.flush_thoughts()
