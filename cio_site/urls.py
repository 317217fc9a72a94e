from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "Petrosa CIO — risk control plane"
admin.site.site_title = "Petrosa CIO"
admin.site.index_title = "Policies, approvals and trading state"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/", include("policies.api.urls")),
]
