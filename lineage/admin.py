"""The admin's decision page with the policy behind the decision: audit's page, extended."""

from typing import Any

from django.contrib import admin
from django.urls import reverse

from audit.admin import DecisionAdmin
from audit.models import Decision
from audit.records import DecisionRecord
from lineage import selectors


class DecisionLineageAdmin(DecisionAdmin):
    detail_template = "admin/lineage/decision_detail.html"

    def detail_extra(self, record: DecisionRecord) -> dict[str, Any]:
        context = selectors.policy_context(record)
        version = context.version
        return {
            "policy": context,
            "version_url": reverse("admin:policies_policyversion_change", args=[version.pk]) if version else None,
            "trace_url": reverse("trace", args=[record.trace_id]),
        }


admin.site.unregister(Decision)
admin.site.register(Decision, DecisionLineageAdmin)
