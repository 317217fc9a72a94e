from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from brakes.login import BrakedLoginForm, admin_login
from cio_site import metrics
from cio_site.health import HealthView

admin.site.site_header = "Petrosa CIO — risk control plane"
admin.site.site_title = "Petrosa CIO"
admin.site.index_title = "Policies, approvals and trading state"
admin.site.login_form = BrakedLoginForm

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("api/health", HealthView.as_view(), name="health"),
    path("api/live", metrics.live, name="live"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/login/", admin_login),  # before the admin's own: the same view, plus the device cookie
    path("admin/", admin.site.urls),
    path("api/", include("policies.api.urls")),
    path("api/", include("audit.api.urls")),
    path("api/", include("lineage.urls")),
    path("api/", include("tradeconfig.api.urls")),
]
