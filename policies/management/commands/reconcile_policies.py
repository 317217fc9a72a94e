"""Keep the database and Redis in agreement: write trading states that reached the gates by notice while Redis
was away, and adopt into the database whatever version Redis runs. Also settle trade-engine configuration
pushes whose outcome is unknown from the engine's live values (docs/tradeconfig.md). `--watch N` repeats every
N seconds (as `make up` runs it); without it, one pass and exit (a cron job, or by hand after an outage). Each pass
first runs the passes other apps add (`policies.extensions.RECONCILE_PASSES`: the Strategist's watch of overdue
cycles and anomalies, alerting as the control plane; settling trade-engine configuration pushes)."""

import logging
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from policies import extensions, live, services

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = __doc__
    passes: list[extensions.ReconcilePass] | None = None  # one set per process: a pass may remember

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--watch", type=float, default=0.0, help="repeat every this many seconds")

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            more = self.step()
            if not options["watch"]:
                return
            time.sleep(0.5 if more else options["watch"])

    def step(self) -> bool:
        """One pass; True when it should come back soon (Redis was away)."""
        if self.passes is None:
            self.passes = [factory() for factory in extensions.RECONCILE_PASSES]
        for extra in self.passes:
            try:
                for line in extra.run():
                    self.stdout.write(f"{extra.name}: {line}")
            except Exception:  # the database or the engine away: the next pass tries again
                log.exception("%s failed; the next pass tries again", extra.name)
        try:
            persisted = services.reconcile_policies(trace_id="")
        except live.LiveUnavailableError as exc:
            self.stderr.write(f"reconcile: {exc}; retrying")
            return True
        for policy in persisted:
            self.stdout.write(
                f"reconcile: v{policy.version} written to Redis (a trading state sent while Redis was away)"
            )
        return False
