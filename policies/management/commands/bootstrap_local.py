"""First-run set-up of the embedded local stack: two risk officers, a viewer and an agent with printed
credentials, and the example policy as the active v1 (written to Redis through the same check-and-set)."""

import json
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from cio_kernel.policy.store import build_document
from policies import roles
from policies.live import LiveUnavailableError, NewerVersionActiveError, policy_signer, publish_document
from policies.models import ApiToken, PolicyEvent, PolicyVersion, ProposerKind, Status, compact_spec, parse_spec

EXAMPLE_POLICY = Path(settings.BASE_DIR) / "deploy" / "policies" / "example.json"
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
        if PolicyVersion.objects.exists():
            active = PolicyVersion.objects.filter(status=Status.ACTIVE).first()
            self.stdout.write(
                f"policy history kept ({PolicyVersion.objects.count()} versions, "
                f"active v{active.version if active else '-'})"
            )
            return
        seeder, _ = User.objects.get_or_create(username="devstack-seed", defaults={"is_active": False})
        spec = parse_spec(EXAMPLE_POLICY.read_text())
        now = timezone.now()
        with transaction.atomic():
            policy = PolicyVersion(
                version=1,
                spec=compact_spec(spec),
                status=Status.ACTIVE,
                proposer_kind=ProposerKind.HUMAN,
                proposed_by=seeder,
                proposed_at=now,
                decided_by=seeder,
                decided_at=now,
                activated_by=seeder,
                activated_at=now,
                rationale=f"seeded from {EXAMPLE_POLICY.name} by make up",
                decision_reason="local seed",
            )
            policy.full_clean(exclude=["version", "checksum"])
            policy.save()
            PolicyEvent.objects.create(
                kind=PolicyEvent.Kind.ACTIVATED, policy=policy, actor=seeder, reason="local seed"
            )
            try:
                publish_document(build_document(spec, 1, seeder.username, signer=policy_signer()))
            except NewerVersionActiveError:
                self.stdout.write("Redis already holds a newer policy than the seed; left as it is")
            except LiveUnavailableError as exc:
                raise SystemExit(f"cannot seed the policy: {exc}") from exc
        self.stdout.write("seeded policy v1 (active) from deploy/policies/example.json")
