"""Alerts in admin: the list with every channel's outcome, one alert's history, and acknowledgement (risk
officers), over the audit store's interface like the rest of the audit trail."""

from django.contrib import admin, messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from alerting import escalation, selectors
from audit.models import Alert
from core import roles
from core.admin import ReadOnlyRecords


@admin.register(Alert)
class AlertAdmin(ReadOnlyRecords):
    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            # The name the admin's index and sidebar link a model's list by (`<app>_<model>_changelist`): the
            # model is audit's, so under any other name "Alerts" is listed there without a link.
            path("", view(self.list_view), name="audit_alert_changelist"),
            path("<str:alert_id>/", view(self.detail_view), name="alerting_alert_detail"),
        ]

    def list_view(self, request: HttpRequest) -> HttpResponse:
        self._guard(request)
        severity = request.GET.get("severity") or None
        views = selectors.recent(100, severity)
        return TemplateResponse(
            request, "admin/alerting/alert_list.html", self._context(request, "Alerts", views=views)
        )

    def detail_view(self, request: HttpRequest, alert_id: str) -> HttpResponse:
        self._guard(request)
        can_acknowledge = request.user.has_perm(roles.perm(roles.APPROVE))
        if request.method == "POST":
            if not can_acknowledge:
                raise Http404("no such page")
            escalation.acknowledge(alert_id, request.user.get_username(), request.POST.get("note", "")[:500])
            self.message_user(request, "acknowledged: no further escalation", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:alerting_alert_detail", args=[alert_id]))
        view = selectors.one(alert_id)
        if view is None:
            raise Http404(f"no alert {alert_id}")
        trace_url = reverse("trace", args=[view.alert.trace_id]) if view.alert.trace_id else None
        return TemplateResponse(
            request,
            "admin/alerting/alert_detail.html",
            self._context(
                request, f"Alert: {view.alert.title}", view=view, can_acknowledge=can_acknowledge, trace_url=trace_url
            ),
        )
