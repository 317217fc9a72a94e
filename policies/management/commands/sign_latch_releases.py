"""Upgrade step: sign the latch releases stored before releases were signed (docs/policy.md, "Latched limits").

Gates take a latch as released only when the control plane's policy key verifies the release; an unsigned one
latches its scope again. Each unsigned release this control plane's database records (a `latch_released` event
with the same time, officer and trip) is stored again with its release signed; any other is listed and left
holding, for a risk officer to release again if it should not hold. Nothing happens when every release is
signed."""

from typing import Any

from django.core.management.base import BaseCommand

from policies.latch_upgrade import sign_legacy_releases


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args: Any, **options: Any) -> None:
        report = sign_legacy_releases()
        for latch in report.signed:
            self.stdout.write(f"signed the recorded release of {latch}")
        for latch in report.unknown:
            self.stdout.write(f"{latch}: released in Redis with no release on record here: left holding")
        if not report.signed and not report.unknown:
            self.stdout.write("every latch release is signed: nothing to do")
