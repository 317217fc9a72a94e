"""Keep the database and Redis in agreement: write trading states that reached the gates by notice while Redis
was away, and adopt into the database whatever version Redis runs. Also settle trade-engine configuration
pushes whose outcome is unknown from the engine's live values (docs/tradeconfig.md). `--watch N` repeats every
N seconds (as `make up` runs it); without it, one pass and exit (a cron job, or by hand after an outage). Each pass
also watches the Strategist (`policies/strategist/watchdog.py`: overdue cycles, anomalies), alerting as the control
plane."""

import logging
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from policies import live, services
from policies.strategist.watchdog import Watchdog
from policies.tradeconfig import services as config_services

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = __doc__
    watchdog: Watchdog | None = None  # one per process: it remembers when it last alerted an overdue Strategist

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
        try:
            self.watchdog = self.watchdog or Watchdog()
            for alert in self.watchdog.check():
                self.stdout.write(f"strategist watch: alert {alert} sent")
        except Exception:  # the database away: the policy pass below says so too
            log.exception("the Strategist watch failed; the next pass tries again")
        try:
            persisted = services.reconcile_policies(trace_id="")
        except live.LiveUnavailableError as exc:
            self.stderr.write(f"reconcile: {exc}; retrying")
            return True
        for policy in persisted:
            self.stdout.write(
                f"reconcile: v{policy.version} written to Redis (a trading state sent while Redis was away)"
            )
        for change in config_services.settle_pending():
            self.stdout.write(f"reconcile: configuration change {change.pk} settled as {change.status}")
        return False
