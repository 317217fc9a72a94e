from django.contrib.admin.apps import AdminConfig


class CioAdminConfig(AdminConfig):
    """The admin with the project's site (cio_site/admin_site.py) as `admin.site`."""

    default_site = "cio_site.admin_site.CioAdminSite"
