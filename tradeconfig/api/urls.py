from django.urls import path

from tradeconfig.api import views

urlpatterns = [
    path("config", views.ConfigView.as_view(), name="config"),
    path("config/change", views.ChangeListView.as_view(), name="config-change-list"),
    path("config/change/<int:change_id>", views.ChangeDetailView.as_view(), name="config-change"),
    path("config/change/<int:change_id>/approve", views.ApproveChangeView.as_view(), name="config-change-approve"),
    path("config/change/<int:change_id>/reject", views.RejectChangeView.as_view(), name="config-change-reject"),
    path("config/change/<int:change_id>/apply", views.ApplyChangeView.as_view(), name="config-change-apply"),
    path(
        "config/change/<int:change_id>/reconcile",
        views.ReconcileChangeView.as_view(),
        name="config-change-reconcile",
    ),
]
