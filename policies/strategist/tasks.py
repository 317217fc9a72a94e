"""Celery tasks: a reasoning cycle (scheduled by beat, or started by a trigger or an officer) and the thought
outbox's flush. Both are safe to run again: a busy cycle is retried (triggers) or skipped (the schedule), and a
thought is stored once per id."""

import logging
from typing import Any

from celery import shared_task
from django.conf import settings

from policies.strategist import cycle as cycles
from policies.strategist.lock import CycleBusyError
from policies.strategist.triggers import SCHEDULE, Trigger

log = logging.getLogger(__name__)

RUN_CYCLE = "strategist.run_cycle"
FLUSH_THOUGHTS = "strategist.flush_thoughts"


@shared_task(bind=True, name=RUN_CYCLE, max_retries=5)
def run_cycle(self: Any, trigger: str = SCHEDULE, detail: dict[str, Any] | None = None) -> str | None:
    try:
        cycle = cycles.run_cycle(Trigger(trigger, detail or {}))
    except CycleBusyError as exc:
        if trigger == SCHEDULE:  # the next tick comes anyway; a trigger must not be lost
            log.info("scheduled cycle skipped: another cycle is running")
            return None
        raise self.retry(exc=exc, countdown=float(settings.CIO_STRATEGIST_BUSY_RETRY_S)) from exc
    return cycle.cycle_id if cycle is not None else None


@shared_task(name=FLUSH_THOUGHTS)
def flush_thoughts() -> int:
    return cycles.flush_thoughts()
