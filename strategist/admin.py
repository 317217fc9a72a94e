"""The Strategist in admin: its settings and envelope (risk officers edit them, with a reason, and every change is
kept), and its cycles with their thoughts, linked to the versions they proposed. "Run a cycle now" queues one."""

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from cio_kernel.policy.spec import TradingState
from core import roles
from core.admin import RecordAdmin
from policies import extensions
from policies.models import PolicyVersion
from strategist.models import (
    CEILING_FIELDS,
    Anomaly,
    Cycle,
    CycleRequest,
    SettingsChange,
    StrategistSettings,
)
from strategist.triggers import MANUAL


@admin.display(description="the Strategist's thought")
def thought_panel(obj: PolicyVersion) -> str:
    """The version page's row for a version the Strategist proposed: the cycle behind it."""
    cycle = Cycle.objects.filter(cycle_id=obj.thought_id).first()
    if cycle is None:
        return f"thought {obj.thought_id} (no cycle on record)"
    return format_html(
        '<a href="{}">cycle {}</a>: {} trigger, {} brain ({}){}<br>validation: <code>{}</code>',
        reverse("admin:strategist_cycle_change", args=[cycle.pk]),
        cycle.cycle_id[:12],
        cycle.trigger,
        cycle.brain,
        cycle.model,
        f"; the LLM was not used: {cycle.fallback_reason}" if cycle.fallback_reason else "",
        json.dumps(cycle.thought.get("validation", {})),
    )


extensions.add_version_panel(extensions.VersionPanel(applies=lambda obj: bool(obj.thought_id), render=thought_panel))


def _officer(request: HttpRequest) -> bool:
    return request.user.has_perm(roles.perm(roles.APPROVE))


def _viewer(request: HttpRequest) -> bool:
    return request.user.has_perm(roles.perm(roles.VIEW))


class SettingsForm(forms.ModelForm):
    forbidden_states = forms.MultipleChoiceField(
        choices=[(s.value, s.value) for s in TradingState if s is not TradingState.ACTIVE],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="states the Strategist may never set (it can never release one in any case)",
    )
    auto_approve_states = forms.MultipleChoiceField(
        choices=[(s.value, s.value) for s in TradingState if s is not TradingState.ACTIVE],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="auto-approval: states it may set on a strategy or symbol (never the global state)",
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2, "cols": 80}), help_text="recorded with the change")

    class Meta:
        model = StrategistSettings
        fields = [
            "enabled",
            *CEILING_FIELDS,
            "min_confidence_floor",
            "forbidden_states",
            "auto_approve_tightening",
            "auto_approve_min_fraction",
            "auto_approve_max_min_confidence",
            "auto_approve_states",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        candidate = StrategistSettings(**{k: v for k, v in data.items() if k != "reason"})
        try:
            candidate.envelope()  # the same models the cycle checks with: a bad envelope is refused here
            candidate.auto_envelope()
        except ValueError as exc:
            raise forms.ValidationError(f"not a valid envelope: {exc}") from exc
        return data


@admin.register(StrategistSettings)
class StrategistSettingsAdmin(admin.ModelAdmin):
    form = SettingsForm
    readonly_fields = ["seeded", "auto_approve_authorised_by", "updated_by", "updated_at", "history"]

    @admin.display(description="seeded")
    def seeded(self, obj: StrategistSettings) -> str:
        if obj.seeded_at is None:
            return "no: set by risk officers" if obj.updated_by_id else "not yet (no policy has been active)"
        when = f"{obj.seeded_at:%Y-%m-%d %H:%M:%S}"
        review = " Not reviewed by an officer yet." if obj.awaiting_review else ""
        return f"seeded on first run from v{obj.seeded_from_version}, the officers' baseline, at {when}.{review}"

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        row = StrategistSettings.current()
        if request.method == "GET" and row.awaiting_review:
            self.message_user(
                request,
                f"The envelope was seeded on first run from v{row.seeded_from_version}, the officers' baseline: "
                "agents and the Strategist may propose nothing looser than it. Review it, and save to make it yours.",
                messages.WARNING,
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*SettingsForm.Meta.fields, "reason", *self.readonly_fields]

    @admin.display(description="changes")
    def history(self, obj: StrategistSettings) -> str:
        rows = SettingsChange.objects.select_related("by")[:50]
        if not rows:
            return "none yet"
        return format_html(
            "<table>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                (
                    (
                        f"{r.at:%Y-%m-%d %H:%M:%S}",
                        r.by,
                        r.reason,
                        json.dumps({k: v for k, v in r.after.items() if r.before.get(k) != v}),
                    )
                    for r in rows
                ),
            ),
        )

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        StrategistSettings.current()
        return HttpResponseRedirect(reverse("admin:strategist_strategistsettings_change", args=[1]))

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        return StrategistSettings.current() if str(object_id) == "1" else None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _officer(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _viewer(request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _viewer(request)

    def save_model(self, request: HttpRequest, obj: StrategistSettings, form: Any, change: bool) -> None:
        before = StrategistSettings.current().as_dict()
        if obj.auto_approve_tightening and not before["auto_approve_tightening"]:
            obj.auto_approve_authorised_by = request.user  # auto-approvals are made under this officer's authority
        elif not obj.auto_approve_tightening:
            obj.auto_approve_authorised_by = None
        obj.updated_by = request.user
        obj.save()
        SettingsChange.objects.create(
            by=request.user, before=before, after=obj.as_dict(), reason=form.cleaned_data["reason"]
        )


class _ReadOnly(RecordAdmin):
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _viewer(request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _viewer(request)


@admin.register(Cycle)
class CycleAdmin(_ReadOnly):
    list_display = [
        "started_at",
        "trigger",
        "brain",
        "model",
        "outcome",
        "proposal_link",
        "fallback",
        "tokens",
        "duration_ms",
        "stored",
    ]
    list_filter = ["outcome", "trigger", "brain"]
    search_fields = ["cycle_id", "trace_id", "rationale"]
    list_select_related = ["proposal"]
    change_list_template = "admin/strategist/cycle/change_list.html"
    fields = [
        "cycle_id",
        "trigger",
        "trigger_detail",
        "request",
        "started_at",
        "finished_at",
        "brain",
        "model",
        "fallback_reason",
        "outcome",
        "based_on_version",
        "proposal_link",
        "rationale",
        "prompt_tokens",
        "completion_tokens",
        "duration_ms",
        "trace_id",
        "thought_stored_at",
        "rendered_thought",
    ]
    readonly_fields = fields

    @admin.display(description="proposal")
    def proposal_link(self, obj: Cycle) -> str:
        if obj.proposal is None:
            return "-"
        url = reverse("admin:policies_policyversion_change", args=[obj.proposal.pk])
        return format_html('<a href="{}">v{} ({})</a>', url, obj.proposal.version, obj.proposal.status)

    @admin.display(description="fallback")
    def fallback(self, obj: Cycle) -> str:
        return obj.fallback_reason.split(":", 1)[0] if obj.fallback_reason else ""

    @admin.display(description="tokens")
    def tokens(self, obj: Cycle) -> int:
        return obj.prompt_tokens + obj.completion_tokens

    @admin.display(description="thought stored", boolean=True)
    def stored(self, obj: Cycle) -> bool:
        return obj.thought_stored_at is not None

    @admin.display(description="thought (as stored in the audit store)")
    def rendered_thought(self, obj: Cycle) -> str:
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', json.dumps(obj.thought, indent=2))

    def get_urls(self) -> list[Any]:
        run = path("run/", self.admin_site.admin_view(self.run_now), name="strategist_cycle_run")
        return [run, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        return super().changelist_view(request, {**(extra_context or {}), "can_run": _officer(request)})

    def run_now(self, request: HttpRequest) -> HttpResponse:
        back = HttpResponseRedirect(reverse("admin:strategist_cycle_changelist"))
        if request.method != "POST" or not _officer(request):
            self.message_user(request, "only a risk officer can start a cycle", messages.ERROR)
            return back
        from strategist import cycle_requests
        from strategist.tasks import run_cycle

        try:
            # Who asked is this session's officer, recorded here; the task names only the row (docs/strategist.md).
            asked = cycle_requests.record(MANUAL, {}, via=cycle_requests.ADMIN, by=request.user)
            run_cycle.apply_async(kwargs={"trigger": MANUAL, "request": asked}, retry=False)
        except Exception as exc:
            self.message_user(request, f"the cycle could not be queued (is the broker up?): {exc!r}", messages.ERROR)
            return back
        self.message_user(request, "a cycle was queued; it appears here when a worker has run it", messages.SUCCESS)
        return back


@admin.register(CycleRequest)
class CycleRequestAdmin(_ReadOnly):
    """Who asked for which cycle (the record a cycle task must name); read-only."""

    list_display = ["requested_at", "kind", "via", "requested_by", "consumed_at", "detail"]
    list_filter = ["kind", "via"]
    readonly_fields = list_display


@admin.register(Anomaly)
class AnomalyAdmin(_ReadOnly):
    """What only a holder of a component's credentials could have done, counted (docs/strategist.md); read-only."""

    list_display = ["kind", "count", "alerted_count", "first_seen", "last_seen", "last_detail"]
    readonly_fields = list_display
