"""Run one Strategist reasoning cycle now, in this process (operators; the worker runs scheduled ones), and
print what it did."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from strategist import cycle as cycles
from strategist.lock import CycleBusyError
from strategist.triggers import MANUAL, Trigger


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rules-only", action="store_true", help="use the rule brain even if an LLM is set")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            # An operator at the shell, in this process: nothing travelled, so the trigger is verified as is.
            trigger = Trigger(MANUAL, {"via": "manage.py"}, verified=True)
            cycle = cycles.run_cycle(trigger, use_env_llm=not options["rules_only"])
        except CycleBusyError as exc:
            raise CommandError(str(exc)) from exc
        if cycle is None:
            self.stdout.write("the Strategist is switched off (Strategist settings)")
            return
        proposal = f" v{cycle.proposal.version}" if cycle.proposal is not None else ""
        self.stdout.write(f"cycle {cycle.cycle_id}: {cycle.brain} brain ({cycle.model}), {cycle.outcome}{proposal}")
        self.stdout.write(cycle.rationale)
