"""The admin's base classes every app's pages stand on. Nothing is registered here."""

from typing import Any

from django.contrib import admin
from django.http import Http404, HttpRequest

from core import roles


class RecordAdmin(admin.ModelAdmin):
    """Records of what happened (policy events, the audit trail): shown, never added, changed or deleted here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyRecords(RecordAdmin):
    """Records shown through custom views over a store interface (the audit trail, alerts); anyone who may view
    policies."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.has_perm(roles.perm(roles.VIEW))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def _context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "title": title, "opts": self.model._meta, **extra}

    def _guard(self, request: HttpRequest) -> None:
        if not self.has_view_permission(request):
            raise Http404("no such page")
