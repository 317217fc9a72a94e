"""Who may look at the cockpit: the page, its snapshot and its socket ask the same."""

from typing import Any

from core import roles


def may_view(user: Any) -> bool:
    """Signed-in, active staff who may view policies (every role has it): what the admin's own pages ask."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_staff
        and user.is_active
        and user.has_perm(roles.perm(roles.VIEW))
    )
