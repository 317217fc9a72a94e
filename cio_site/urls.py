from django.contrib import admin
from django.urls import include, path

from brakes.login import BrakedLoginForm
from cio_site import metrics
from cio_site.health import HealthView
from cockpit import views as cockpit_views

admin.site.login_form = BrakedLoginForm

urlpatterns = [
    path("", include("cockpit.urls")),  # `/`: the risk officer's cockpit (docs/cockpit.md)
    path("api/health", HealthView.as_view(), name="health"),
    path("api/live", metrics.live, name="live"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/login/", cockpit_views.login),  # before the admin's own: the same view, plus the device cookie
    path("admin/", admin.site.urls),
    path("api/", include("policies.api.urls")),
    path("api/", include("audit.api.urls")),
    path("api/", include("lineage.urls")),
    path("api/", include("tradeconfig.api.urls")),
]
