"""Upgrade step: name the active policy's strategies by their keys (docs/policy.md, "Identities").

Policies stored before strategies were named by key (`Iceberg Order Detector`, `llm-swing`) no longer validate:
gates refuse them and answer RETRY_SAFE until the active policy names every strategy by its key
(`iceberg_order_detector`, `llm_swing`). This writes the active policy again as a new version with only the names
changed, signed and activated like any version, by the risk officer given with `--by`. Proposals waiting with
old names are listed: propose them again. Nothing happens when every name is already a key."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import DomainError
from policies import services
from policies.models import PolicyVersion, Status
from policies.services import strategy_keys_of


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--by", required=True, help="the risk officer's username (recorded as activating it)")

    def handle(self, *args: Any, **options: Any) -> None:
        officer = get_user_model().objects.filter(username=options["by"]).first()
        if officer is None:
            raise CommandError(f"no user {options['by']!r}")
        try:
            row = services.rekey_strategies(by=officer, trace_id="")
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc}") from exc
        if row is None:
            self.stdout.write("the active policy already names every strategy by its key: nothing to do")
        else:
            self.stdout.write(f"v{row.version} active: {row.rationale}")
        for waiting in PolicyVersion.objects.filter(status=Status.PROPOSED).order_by("version"):
            try:
                if strategy_keys_of(waiting.spec):
                    self.stdout.write(f"proposed v{waiting.version} names strategies otherwise: propose it again")
            except DomainError as exc:
                self.stdout.write(f"proposed v{waiting.version}: {exc}: propose it again")
