from django.urls import path

from cockpit import views

urlpatterns = [
    path("", views.landing, name="cockpit"),
    path("cockpit/snapshot", views.snapshot_json, name="cockpit_snapshot"),
    path("cockpit/trading-state", views.trading_state, name="cockpit_trading_state"),
    path("cockpit/alerts/<str:alert_id>/acknowledge", views.acknowledge, name="cockpit_acknowledge"),
    path(
        "cockpit/incidents/<str:incident_id>/acknowledge",
        views.acknowledge_incident,
        name="cockpit_acknowledge_incident",
    ),
]
