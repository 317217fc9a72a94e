"""First-run set-up of the embedded local stack: two risk officers, a viewer and an agent with printed
credentials, and the example policy as the active v1 (through the same service, lock and check-and-set as
an officer's activation), without its daily loss limits: see `local_policy_spec`."""

import json
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand

from core import roles
from core.errors import DomainError
from policies import latch_upgrade, selectors, services
from policies.models import ApiToken, PolicyVersion

EXAMPLE_POLICY = Path(settings.BASE_DIR) / "deploy" / "policies" / "example.json"
# Today's trade engine reports no daily PnL with a window (its `daily_pnl` counts realised PnL and is never reset),
# so the snapshot bridge leaves it unknown and a daily loss limit refuses every opening intent (DAILY_PNL_UNKNOWN,
# docs/contracts.md). The local stack runs against a stand-in of that engine: seeding those limits would show a
# demo in which nothing opens.
DAILY_LOSS_FIELDS = ("max_daily_loss_usd", "max_daily_loss_pct")
ACCOUNTS = [
    ("officer1", roles.RISK_OFFICER),
    ("officer2", roles.RISK_OFFICER),
    ("viewer", roles.VIEWER),
    ("agent", roles.AGENT),
]


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args: Any, **options: Any) -> None:
        credentials_file = Path(settings.STATE_DIR) / "local-credentials.json"
        credentials = json.loads(credentials_file.read_text()) if credentials_file.exists() else {}
        for username, role in ACCOUNTS:
            user = User.objects.filter(username=username).first()
            if user is None:
                password = secrets.token_urlsafe(12)
                user = User.objects.create_user(username, password=password, is_staff=role != roles.AGENT)
                user.groups.add(Group.objects.get(name=role))
                credentials[username] = {"password": password, "role": role}
            entry = credentials.setdefault(username, {"role": role})
            known = entry.get("token")
            if not known or not ApiToken.objects.filter(user=user, key_hash=ApiToken.digest(known)).exists():
                # The database keeps only a hash: a token this file lost is replaced, not recovered.
                _, entry["token"] = ApiToken.issue(user)
        credentials_file.parent.mkdir(parents=True, exist_ok=True)
        credentials_file.write_text(json.dumps(credentials, indent=2))
        credentials_file.chmod(0o600)
        self._seed_policy()
        for username, entry in credentials.items():
            self.stdout.write(
                f"login {username:<9} role {entry['role']:<13} password {entry.get('password', '(changed)')}"
                f"  API token {entry['token']}"
            )
        self.stdout.write(f"(kept in {credentials_file})")

    def _seed_policy(self) -> None:
        seeder, _ = User.objects.get_or_create(username="devstack-seed", defaults={"is_active": False})
        try:
            seeded = services.seed_first_policy(
                spec=local_policy_spec(),
                by=seeder,
                rationale=f"seeded from {EXAMPLE_POLICY.name} by make up, without its daily loss limits",
            )
        except DomainError as exc:
            raise SystemExit(f"cannot seed the policy: {exc.code}: {exc}") from exc
        if seeded is not None:
            self.stdout.write(f"seeded policy v{seeded.version} (active) from deploy/policies/{EXAMPLE_POLICY.name}")
            return
        active = selectors.active_version()
        shown = f"v{active.version}" if active else "none"
        self.stdout.write(f"policy history kept ({PolicyVersion.objects.count()} versions, active {shown})")
        if active is not None and services.strategy_keys_of(active.spec):
            # A local state from before strategies were named by key: gates refuse that policy (fail closed).
            # On the local stack officer1 does the upgrade step (`manage.py rekey_policy`) at once.
            rekeyed = services.rekey_strategies(by=User.objects.get(username="officer1"))
            if rekeyed is not None:
                self.stdout.write(f"upgraded: v{rekeyed.version} active, {rekeyed.rationale}")
        self._sign_latch_releases()

    def _sign_latch_releases(self) -> None:
        """A local state from before latch releases were signed: sign the releases this database records (gates
        would otherwise take them as holding). Redis may not be up yet on a first run: then there is nothing."""
        try:
            report = latch_upgrade.sign_legacy_releases()
        except Exception as exc:
            self.stdout.write(f"latch releases not checked ({exc!r}): run `manage.py sign_latch_releases`")
            return
        for latch in report.signed:
            self.stdout.write(f"upgraded: the release of latch {latch} signed")
        for latch in report.unknown:
            self.stdout.write(f"latch {latch}: released in Redis with no release on record: it holds")


def local_policy_spec() -> str:
    """The example policy less its daily loss limits (in every scope), saying so in its description."""
    spec = json.loads(EXAMPLE_POLICY.read_text())
    scopes = [spec.get("global", {}), *spec.get("strategies", {}).values(), *spec.get("symbols", {}).values()]
    for scope in scopes:
        for field in DAILY_LOSS_FIELDS:
            scope.pop(field, None)
    spec["description"] = (
        f"{spec.get('description', '')} Seeded by make up without its daily loss limits: today's trade engine "
        "reports no daily PnL window, so they would refuse every opening intent (DAILY_PNL_UNKNOWN)."
    ).strip()
    return json.dumps(spec)
