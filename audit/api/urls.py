from django.urls import path

from audit.api import views

urlpatterns = [
    path("audit", views.DecisionListView.as_view(), name="audit-list"),
    path("incidents", views.IncidentListView.as_view(), name="incidents"),
]
