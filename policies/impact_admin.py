"""The impact preview on the policy version page (docs/impact-preview.md): a panel with a button that starts a
preview of this version against the active one, a progress bar while a worker replays, then the difference table.
Kept apart from `policies.admin`, which only routes `impact_view` and imports this module to add the panel."""

import math
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.template.loader import render_to_string
from django.urls import reverse

from core import roles
from core.envelope import http_status
from core.errors import DomainError
from gate.replay import TO_APPROVED, TO_REJECTED
from policies import extensions, impact
from policies.models import PolicyVersion
from policies.selectors import policy_version


def impact_view(request: HttpRequest, version: int) -> JsonResponse:
    """GET: the version's latest preview (polled by the panel). POST: start one (`window_hours`, optional)."""
    try:
        policy = policy_version(version)
        if request.method == "POST":
            hours = request.POST.get("window_hours", "").strip()
            window = _hours(hours) if hours else None
            if hours and window is None:
                return JsonResponse({"error": "VAL_ERR: window_hours must be a number above 0"}, status=400)
            return JsonResponse(impact.summary(impact.start(by=request.user, candidate=policy, window_hours=window)))
        roles.require(request.user, roles.VIEW, "view policies")
        preview = impact.latest_for(policy)
        return JsonResponse(impact.summary(preview) if preview else {"state": None})
    except DomainError as exc:
        return JsonResponse({"error": f"{exc.code}: {exc}"}, status=http_status(exc))


def _hours(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


@admin.display(description="impact preview")
def impact_panel(obj: PolicyVersion) -> str:
    preview = impact.latest_for(obj)
    summary = impact.summary(preview) if preview is not None else None
    cells = (summary or {}).get("result") or {}
    context: dict[str, Any] = {
        "version": obj.version,
        "url": reverse("admin:policies_impact", args=[obj.version]),
        "default_hours": settings.CIO_IMPACT_WINDOW_HOURS,
        "preview": summary,
        "to_rejected": [c for c in cells.get("cells", ()) if c["direction"] == TO_REJECTED],
        "to_approved": [c for c in cells.get("cells", ()) if c["direction"] == TO_APPROVED],
    }
    return render_to_string("admin/policies/impact_preview.html", context)


extensions.add_version_panel(extensions.VersionPanel(applies=lambda obj: True, render=impact_panel))
