"""The admin's incident pages with each incident's case: audit's list, extended with the case's status and owner,
the open cases, and one incident's page where risk officers acknowledge and resolve it (the permission that
acknowledges alerts)."""

from typing import Any

from django.contrib import admin, messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from audit.admin import IncidentAdmin
from audit.models import Incident
from audit.records import Incident as IncidentRecord
from audit.store import get_store
from core import errors
from outages import selectors, services

ACTS = {"acknowledge": services.acknowledge, "resolve": services.resolve}


class IncidentCaseAdmin(IncidentAdmin):
    list_template = "admin/outages/incident_list.html"

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("", view(self.list_view), name="audit_incident_changelist"),
            path("open/", view(self.open_view), name="audit_incident_open"),
            path("<str:incident_id>/", view(self.detail_view), name="audit_incident_detail"),
        ]

    def row_extra(self, listed: list[IncidentRecord]) -> dict[str, Any]:
        return selectors.cases_of([incident.incident_id for incident in listed])

    def open_view(self, request: HttpRequest) -> HttpResponse:
        self._guard(request)
        return TemplateResponse(
            request,
            "admin/outages/open_incidents.html",
            self._context(request, "Open incidents", cases=selectors.open_incidents()),
        )

    def detail_view(self, request: HttpRequest, incident_id: str) -> HttpResponse:
        self._guard(request)
        can_act = request.user.has_perm(services.perm())
        url = reverse("admin:audit_incident_detail", args=[incident_id])
        if request.method == "POST":
            act = ACTS.get(request.POST.get("act", ""))
            if not can_act or act is None:
                raise Http404("no such page")
            try:
                act(incident_id, request.user, request.POST.get("note", "")[:500])
            except (errors.InvalidTransitionError, errors.NotFoundError) as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"{request.POST['act']}d", messages.SUCCESS)
            return HttpResponseRedirect(url)
        record = get_store().get_incident(incident_id)
        case = selectors.case(incident_id)
        if record is None and case is None:
            raise Http404(f"no incident {incident_id}")
        alert_url = reverse("admin:alerting_alert_detail", args=[case.alert_id]) if case and case.alert_id else None
        return TemplateResponse(
            request,
            "admin/outages/incident_detail.html",
            self._context(
                request,
                f"Incident: {record.title if record else case.title if case else incident_id}",
                record=record,
                case=case,
                can_act=can_act,
                alert_url=alert_url,
            ),
        )


admin.site.unregister(Incident)
admin.site.register(Incident, IncidentCaseAdmin)
