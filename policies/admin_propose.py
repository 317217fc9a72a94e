"""The admin's propose page: the policy as a form per scope and field (the default), or as one JSON document for
experts; both submit through the same validation (`policies.spec_form.parse_with_check`) and propose through
`services.propose`, which checks everything again."""

import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from cio_kernel.policy.spec import PolicySpec
from core.envelope import trace_id_of
from core.errors import DomainError
from policies import services
from policies.diff import diff_specs, summarise
from policies.models import compact_spec
from policies.selectors import active_version
from policies.spec_form import PolicyFieldsForm, inputs_needed, parse_with_check

FIELDS_VIEW, JSON_VIEW = "fields", "json"


def propose_view(model_admin: Any, request: HttpRequest) -> HttpResponse:
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    active = active_version()
    base = active.parsed_spec if active is not None else PolicySpec()
    view = request.POST.get("view") or request.GET.get("view") or FIELDS_VIEW
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    too_many_inputs = limit is not None and inputs_needed(base) > limit
    if too_many_inputs:
        view = JSON_VIEW
    data = request.POST if request.method == "POST" else None
    problems: list[str] = []
    if view == JSON_VIEW:
        form = model_admin.get_form(request)(data, initial={"spec": json.dumps(compact_spec(base), indent=2)})
        valid = form.is_valid()
        spec, rationale = (form.cleaned_data["spec"], form.cleaned_data["rationale"]) if valid else (None, "")
    else:
        form = PolicyFieldsForm(
            data,
            initial=base,
            check=lambda raw: parse_with_check(raw, request.user, active),
        )
        valid = form.is_valid()
        spec, rationale = (form.cleaned, form.head.cleaned_data["rationale"]) if valid else (None, "")
    if valid:
        try:
            proposed = services.propose(spec=spec, by=request.user, rationale=rationale, trace_id=trace_id_of(request))
        except DomainError as exc:
            problems.append(f"{exc.code}: {exc}")
        else:
            model_admin.log_addition(request, proposed, [{"added": {}}])
            changes = summarise(diff_specs(base if active is not None else None, proposed.parsed_spec))
            model_admin.message_user(request, f"proposed v{proposed.version} ({changes})", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:policies_policyversion_change", args=[proposed.pk]))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Propose a policy version",
        "opts": model_admin.model._meta,
        "view": view,
        "form": form,
        "problems": problems if view == JSON_VIEW else problems + form.non_field_errors,
        "too_many_inputs": too_many_inputs,
        "active_policy": active,
    }
    template = "propose_json.html" if view == JSON_VIEW else "propose_fields.html"
    return TemplateResponse(request, f"admin/policies/policyversion/{template}", context)
