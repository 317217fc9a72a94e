"""The admin's floor plan: what a risk officer works with comes first on the index and in the sidebar, in the order
of a review (policies, then what the gates decided and raised, then the Strategist), and the plumbing (accounts,
the scheduler's tables) last. Django lists apps alphabetically, which put "Periodic tasks" above "Risk policies"."""

from django.contrib import admin
from django.http import HttpRequest

# App labels, first to last; an app not named here sits between these and the plumbing, alphabetically.
RISK_FIRST = ("policies", "audit", "outages", "alerting", "strategist", "tradeconfig", "lineage")
PLUMBING_LAST = ("brakes", "authtoken", "auth", "django_celery_beat")


def floor_order(app_label: str) -> tuple[int, int]:
    if app_label in RISK_FIRST:
        return (0, RISK_FIRST.index(app_label))
    if app_label in PLUMBING_LAST:
        return (2, PLUMBING_LAST.index(app_label))
    return (1, 0)


class CioAdminSite(admin.AdminSite):
    site_header = "Petrosa CIO — risk control plane"
    site_title = "Petrosa CIO"
    index_title = "Policies, approvals and trading state"

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        apps = super().get_app_list(request, app_label)  # alphabetical: the sort below is stable within a band
        return sorted(apps, key=lambda app: floor_order(app["app_label"]))
