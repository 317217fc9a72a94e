from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.urls import include, path
from django.views.generic import RedirectView

from cio_site.health import HealthView
from policies.authentication import client_address, record_failure, too_many_failures


class ThrottledLoginForm(AdminAuthenticationForm):
    """The admin login, refused for a minute after too many failures from one address."""

    def clean(self) -> dict[str, Any]:
        address = client_address(self.request)
        if too_many_failures("login", address):
            raise ValidationError("too many failed logins from this address: wait a minute", code="throttled")
        try:
            return super().clean()
        except ValidationError:
            record_failure("login", address)
            raise


admin.site.site_header = "Petrosa CIO — risk control plane"
admin.site.site_title = "Petrosa CIO"
admin.site.index_title = "Policies, approvals and trading state"
admin.site.login_form = ThrottledLoginForm

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("api/health", HealthView.as_view(), name="health"),
    path("admin/", admin.site.urls),
    path("api/", include("policies.api.urls")),
    path("api/", include("audit.api.urls")),
    path("api/", include("policies.tradeconfig.api.urls")),
]
