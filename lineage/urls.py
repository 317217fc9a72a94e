from django.urls import path

from lineage import api

urlpatterns = [
    path("audit/<str:decision_id>", api.DecisionDetailView.as_view(), name="audit-decision"),
    path("trace/<str:trace_id>", api.TraceView.as_view(), name="trace"),
]
