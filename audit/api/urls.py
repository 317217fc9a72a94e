from django.urls import path

from audit.api import views

urlpatterns = [
    path("audit", views.DecisionListView.as_view(), name="audit-list"),
    path("audit/<str:decision_id>", views.DecisionDetailView.as_view(), name="audit-decision"),
    path("trace/<str:trace_id>", views.TraceView.as_view(), name="trace"),
    path("incidents", views.IncidentListView.as_view(), name="incidents"),
]
