from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from policies.api import views

urlpatterns = [
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("policy", views.ActivePolicyView.as_view(), name="policy"),
    path("policy/version", views.VersionListView.as_view(), name="policy-version-list"),
    path("policy/version/<int:version>", views.VersionDetailView.as_view(), name="policy-version"),
    path("policy/version/<int:version>/diff", views.VersionDiffView.as_view(), name="policy-version-diff"),
    path("policy/version/<int:version>/impact", views.ImpactView.as_view(), name="policy-version-impact"),
    path("policy/version/<int:version>/approve", views.ApproveView.as_view(), name="policy-version-approve"),
    path("policy/version/<int:version>/reject", views.RejectView.as_view(), name="policy-version-reject"),
    path("policy/version/<int:version>/activate", views.ActivateView.as_view(), name="policy-version-activate"),
    path("policy/version/<int:version>/rollback", views.RollbackView.as_view(), name="policy-version-rollback"),
    path("policy/propose", views.ProposeView.as_view(), name="policy-propose"),
    path("policy/event", views.PolicyEventListView.as_view(), name="policy-event"),
    path("trading-state", views.TradingStateView.as_view(), name="trading-state"),
    path("gate", views.GateStatusView.as_view(), name="gate"),
    path("latch", views.LatchView.as_view(), name="latch"),
    path("latch/release", views.LatchReleaseView.as_view(), name="latch-release"),
]
