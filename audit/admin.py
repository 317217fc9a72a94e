"""The audit trail in Django admin: custom views over the store interface, so they work the same whichever
backend holds the records (MongoDB has no Django models). Read-only; the policy viewer permission."""

from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from audit import incidents, selectors, shadow_report
from audit.models import Decision, Incident
from audit.records import DecisionRecord
from audit.records import Incident as IncidentRecord
from audit.store import get_store
from core import errors, roles
from core.admin import ReadOnlyRecords

# The shadow report's windows, back from now (docs/deploy.md, "Shadow mode").
SHADOW_WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
SHADOW_EXAMPLES = 50
_FILTER_FIELDS = ("since", "until", "strategy_id", "symbol", "decision", "reason_code", "policy_version", "shadow")


@admin.register(Decision)
class DecisionAdmin(ReadOnlyRecords):
    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("", view(self.list_view), name="audit_decision_changelist"),
            path("live/", view(self.live_view), name="audit_decision_live"),
            path("shadow/", view(self.shadow_report_view), name="audit_decision_shadow_report"),
            path("<str:decision_id>/", view(self.detail_view), name="audit_decision_detail"),
        ]

    def list_view(self, request: HttpRequest) -> HttpResponse:
        self._guard(request)
        params = {k: v for k, v in request.GET.items() if k in (*_FILTER_FIELDS, "cursor", "limit") and v}
        error, records, next_cursor = None, [], None
        try:
            query = selectors.decision_query(params)
            if request.GET.get("q", "").strip():
                records = selectors.search(request.GET["q"], query)
            else:
                page = get_store().find_decisions(query)
                records, next_cursor = page.records, page.next_cursor
        except selectors.QueryError as exc:
            error = str(exc)
        keep = {k: v for k, v in params.items() if k != "cursor"}
        return TemplateResponse(
            request,
            "admin/audit/decision_list.html",
            self._context(
                request,
                "Decisions",
                records=records,
                error=error,
                filters=keep,
                q=request.GET.get("q", ""),
                next_query=_query_string({**keep, "cursor": next_cursor}) if next_cursor else None,
                decisions=selectors.DECISIONS,
                backend=get_store().name,
            ),
        )

    detail_template = "admin/audit/decision_detail.html"

    def detail_extra(self, record: DecisionRecord) -> dict[str, Any]:
        """What an app above the audit trail adds to a decision's page (`lineage`: the policy behind it)."""
        return {}

    def detail_view(self, request: HttpRequest, decision_id: str) -> HttpResponse:
        self._guard(request)
        record = get_store().get_decision(decision_id)
        if record is None:
            raise Http404(f"no decision {decision_id}")
        event = record.event()
        return TemplateResponse(
            request,
            self.detail_template,
            self._context(
                request,
                f"Decision {decision_id}",
                record=record,
                event=event,
                intent=event.intent,
                **self.detail_extra(record),
            ),
        )

    def live_view(self, request: HttpRequest) -> HttpResponse:
        self._guard(request)
        return TemplateResponse(request, "admin/audit/decision_live.html", self._context(request, "Live decisions"))

    def shadow_report_view(self, request: HttpRequest) -> HttpResponse:
        """`manage.py shadow_report` as a page for risk officers: the same report, over a window back from now;
        an error panel instead of a report when the recorded promotions cannot be read."""
        try:
            roles.require(request.user, roles.VIEW, "read the audit trail")
        except errors.PermissionDeniedError as exc:
            raise PermissionDenied(str(exc)) from exc
        window = request.GET.get("window") or "24h"
        gate_id = request.GET.get("gate", "").strip() or None
        report, error = None, None
        if window not in SHADOW_WINDOWS:
            error = f"window: must be one of {', '.join(SHADOW_WINDOWS)}"
        else:
            until = datetime.now(UTC)
            try:
                report = shadow_report.build_report(
                    until - SHADOW_WINDOWS[window], until, gate_id=gate_id, examples=SHADOW_EXAMPLES
                )
            except shadow_report.PromotionsUnreadableError as exc:
                error = str(exc)
        return TemplateResponse(
            request,
            "admin/audit/shadow_report.html",
            self._context(
                request,
                "Shadow report",
                report=report,
                error=error,
                window=window,
                windows=list(SHADOW_WINDOWS),
                gate=gate_id or "",
                outcomes=shadow_report.OUTCOMES,
                disagreements=shadow_report.DISAGREEMENTS,
            ),
        )


@admin.register(Incident)
class IncidentAdmin(ReadOnlyRecords):
    list_template = "admin/audit/incident_list.html"

    def get_urls(self) -> list[URLPattern]:
        return [path("", self.admin_site.admin_view(self.list_view), name="audit_incident_changelist")]

    def row_extra(self, listed: list[IncidentRecord]) -> dict[str, Any]:
        """What an app above adds to each listed incident, by incident id (`outages`: its case, status and owner)."""
        return {}

    def list_view(self, request: HttpRequest) -> HttpResponse:
        self._guard(request)
        similar_to, text = request.GET.get("similar_to", ""), request.GET.get("text", "").strip()
        error, rows = None, []
        try:
            if similar_to or text:
                rows = incidents.similar(incident_id=similar_to or None, text=text or None, limit=20)
            else:
                rows = [(i, None) for i in get_store().recent_incidents(100)]
        except incidents.UnknownIncidentError as exc:
            error = str(exc)
        extra = self.row_extra([incident for incident, _ in rows])
        listed = [(incident, score, extra.get(incident.incident_id)) for incident, score in rows]
        return TemplateResponse(
            request,
            self.list_template,
            self._context(request, "Incidents", rows=listed, error=error, similar_to=similar_to, text=text),
        )


def _query_string(values: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in values.items() if v})
