"""Roles are Django groups; what each may do is a set of permissions on `PolicyVersion`, checked in services."""

from typing import Any

RISK_OFFICER = "risk_officer"
VIEWER = "viewer"
AGENT = "agent"
# The Strategist's own account: it proposes (and reads), nothing else (docs/strategist.md).
STRATEGIST = "strategist"

VIEW = "view_policyversion"
PROPOSE = "propose_policyversion"
APPROVE = "approve_policyversion"
ACTIVATE = "activate_policyversion"
SET_TRADING_STATE = "set_trading_state"
TIGHTEN_TRADING_STATE = "tighten_trading_state"

ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    RISK_OFFICER: (VIEW, PROPOSE, APPROVE, ACTIVATE, SET_TRADING_STATE, TIGHTEN_TRADING_STATE),
    VIEWER: (VIEW,),
    AGENT: (VIEW, PROPOSE, TIGHTEN_TRADING_STATE),
    STRATEGIST: (VIEW, PROPOSE),
}


# Beyond policies: the Strategist's schedule (django-celery-beat's models), edited by officers, read by viewers.
SCHEDULE_APP = "django_celery_beat"
_SCHEDULE_MODELS = ("periodictask", "intervalschedule", "crontabschedule", "solarschedule", "clockedschedule")
SCHEDULE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    RISK_OFFICER: tuple(f"{a}_{m}" for a in ("view", "add", "change", "delete") for m in _SCHEDULE_MODELS),
    VIEWER: tuple(f"view_{m}" for m in _SCHEDULE_MODELS),
}


def perm(codename: str) -> str:
    return f"policies.{codename}"


def may_look(user: Any) -> bool:
    """Signed-in, active staff who may view policies (every role has it): what the admin's own pages ask, and so
    what every page outside the admin (the cockpit) and every websocket asks too."""
    return bool(
        user is not None and user.is_authenticated and user.is_staff and user.is_active and user.has_perm(perm(VIEW))
    )


def require(user: Any, codename: str, action: str) -> None:
    """The one permission check of every service: `PERMISSION_DENIED: <user> may not <action>` otherwise."""
    from core.errors import PermissionDeniedError

    if not user.has_perm(perm(codename)):
        raise PermissionDeniedError(f"{user} may not {action}")


def ensure_roles(group_model: Any, permission_model: Any) -> None:
    """Create or repair the role groups (used by the data migration, and by tests after a table flush)."""
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.set(
            permission_model.objects.filter(content_type__app_label="policies", codename__in=codenames)
        )
        group.permissions.add(
            *permission_model.objects.filter(
                content_type__app_label=SCHEDULE_APP, codename__in=SCHEDULE_PERMISSIONS.get(role, ())
            )
        )
