"""Policy impact preview (docs/impact-preview.md): what a candidate policy would have decided differently from the
active one over the audited intents of a window, replayed by the gate's own decision function (`gate.replay`).

`start` checks who asks and what, records the preview and runs it in the request when the window is small
(`CIO_IMPACT_INLINE_MAX` decisions) or queues the task `IMPACT_PREVIEW` (policies/tasks.py) otherwise; `run`
streams the window from the audit store in arrival order, keeps the preview's progress (percent of the window's
time replayed) and stores the result for the page, REST and MCP to read.
"""

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from audit.store import decision_log
from audit.store.decisions import MAX_PAGE, DecisionQuery
from cio_kernel.policy.document import PolicyDocument
from cio_kernel.policy.spec import PolicySpec
from cio_kernel.policy.store import build_document
from core import roles
from core.errors import NotFoundError, SpecInvalidError, StoreUnavailableError
from gate.replay import AuditedIntent, replay
from policies.models import ImpactPreview, PolicyVersion, compact_spec, parse_spec
from policies.selectors import active_version

log = logging.getLogger(__name__)
State = ImpactPreview.State
IMPACT_PREVIEW = "policies.impact_preview"  # the Celery task that runs `run` (policies/tasks.py)
# Progress is written at most once per percent, read every this many records.
_PROGRESS_EVERY = 5_000


def start(
    *,
    by: AbstractBaseUser,
    candidate: PolicyVersion | None = None,
    spec: Any = None,
    window_hours: float | None = None,
    since: datetime | None = None,
) -> ImpactPreview:
    """Preview `candidate` (a version) or `spec` (unsaved) against the active policy, over the last `window_hours`
    (default `CIO_IMPACT_WINDOW_HOURS`) or everything since `since`. Whoever may propose a policy may preview one:
    the replay costs the control plane CPU, which viewers do not get to spend."""
    roles.require(by, roles.PROPOSE, "preview a policy's impact")
    if (candidate is None) == (spec is None):
        raise SpecInvalidError("give either a policy version or an unsaved spec to preview")
    candidate_spec = candidate.spec if candidate is not None else compact_spec(_parsed(spec))
    active = active_version()
    if active is None:
        raise NotFoundError("no policy is active: there is nothing to compare the candidate with")
    until = timezone.now()
    start_at = _window_start(until, window_hours, since)
    preview = ImpactPreview.objects.create(
        candidate=candidate,
        candidate_spec=candidate_spec,
        active_version=active.version,
        since=start_at,
        until=until,
        requested_by=by,
    )
    if _small(start_at, until):
        return run(preview.id)
    try:
        # By name: the task's module (policies/tasks.py) imports this one. The project's app is the current one.
        current_app.send_task(IMPACT_PREVIEW, args=[str(preview.id)], retry=False)
    except Exception as exc:
        _fail(preview, f"could not queue the replay ({type(exc).__name__}); retry")
        raise StoreUnavailableError("the task broker did not take the replay: retry") from exc
    return preview


def run(preview_id: UUID | str) -> ImpactPreview:
    """Replay one preview's window (in the worker, or inline for a small one). A preview already finished is left as
    it is: a task delivered twice replays once."""
    preview = ImpactPreview.objects.select_related("candidate").get(pk=preview_id)
    if preview.state in (State.DONE, State.FAILED):
        return preview
    ImpactPreview.objects.filter(pk=preview.pk).update(state=State.RUNNING)
    try:
        active_spec = PolicyVersion.objects.get(version=preview.active_version).parsed_spec
        candidate_spec = parse_spec(preview.candidate_spec)
        number = preview.candidate.version if preview.candidate is not None else 0
        impact = replay(
            audited_intents(preview.since, preview.until),
            _document(active_spec, preview.active_version),
            _document(candidate_spec, number),
            progress=_progress_writer(preview),
            progress_every=_PROGRESS_EVERY,
        )
    except Exception as exc:
        log.exception("impact preview %s failed", preview.pk)
        return _fail(preview, f"the replay failed ({type(exc).__name__}); retry, or narrow the window")
    result = impact.as_dict()
    result["candidate_version"] = preview.candidate.version if preview.candidate is not None else None
    for cell in result["cells"]:
        for sample in cell["samples"]:
            sample["url"] = reverse("admin:audit_decision_detail", args=[sample["decision_id"]])
    ImpactPreview.objects.filter(pk=preview.pk).update(
        state=State.DONE, progress=100, result=result, finished_at=timezone.now()
    )
    preview.refresh_from_db()
    return preview


def audited_intents(since: datetime, until: datetime) -> Iterator[AuditedIntent]:
    """The window's decisions as the replay reads them, streamed in the order they were decided."""
    for payload in decision_log().decision_payloads(since, until):
        yield AuditedIntent.from_event(payload)


def preview_of(preview_id: UUID | str) -> ImpactPreview:
    try:
        return ImpactPreview.objects.select_related("candidate").get(pk=preview_id)
    except (ImpactPreview.DoesNotExist, ValidationError, ValueError) as exc:
        raise NotFoundError(f"no impact preview {preview_id}") from exc


def latest_for(version: PolicyVersion) -> ImpactPreview | None:
    return ImpactPreview.objects.filter(candidate=version).order_by("-created_at").first()


def summary(preview: ImpactPreview) -> dict[str, Any]:
    """The preview as REST and MCP answer it (the page renders the same)."""
    return {
        "id": str(preview.id),
        "state": preview.state,
        "progress": preview.progress,
        "candidate_version": preview.candidate.version if preview.candidate is not None else None,
        "active_version": preview.active_version,
        "since": preview.since.isoformat(),
        "until": preview.until.isoformat(),
        "error": preview.error or None,
        "result": preview.result,
    }


def _parsed(spec: Any) -> PolicySpec:
    try:
        return parse_spec(spec)
    except ValidationError as exc:
        raise SpecInvalidError("; ".join(exc.messages)) from exc


def _window_start(until: datetime, window_hours: float | None, since: datetime | None) -> datetime:
    if since is not None and window_hours is not None:
        raise SpecInvalidError("give either window_hours or since, not both")
    if since is not None:
        if since.tzinfo is None:
            raise SpecInvalidError("since: must carry a time zone (Z or +00:00)")
        if since >= until:
            raise SpecInvalidError("since: must be in the past")
        return since.astimezone(UTC)
    hours = settings.CIO_IMPACT_WINDOW_HOURS if window_hours is None else window_hours
    if not 0 < hours <= 24 * 366 * 100:
        raise SpecInvalidError("window_hours: must be above 0 (use since for the whole history)")
    return until - timedelta(hours=hours)


def _small(since: datetime, until: datetime) -> bool:
    limit = max(1, min(settings.CIO_IMPACT_INLINE_MAX, MAX_PAGE))
    page = decision_log().find_decisions(DecisionQuery(since=since, until=until, shadow=False, limit=limit))
    return page.next_cursor is None


def _document(spec: PolicySpec, version: int) -> PolicyDocument:
    return build_document(spec, version, "impact-preview", datetime.now(UTC))


def _progress_writer(preview: ImpactPreview) -> Any:
    start_s, span_s = preview.since.timestamp(), max(1e-6, (preview.until - preview.since).total_seconds())
    shown = [0]

    def write(read: int, ts: float | None) -> None:
        if ts is None:
            return
        percent = max(0, min(99, int((ts - start_s) / span_s * 100)))
        if percent > shown[0]:
            shown[0] = percent
            ImpactPreview.objects.filter(pk=preview.pk).update(progress=percent)

    return write


def _fail(preview: ImpactPreview, message: str) -> ImpactPreview:
    ImpactPreview.objects.filter(pk=preview.pk).update(state=State.FAILED, error=message, finished_at=timezone.now())
    preview.refresh_from_db()
    return preview
