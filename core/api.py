"""The REST base every app's endpoints stand on: authenticated, and allowed to view policies (every role is)."""

from typing import Any

from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from core import roles
from core.nul import NUL


class CanViewPolicies(permissions.BasePermission):
    message = "you need the viewer, agent or risk-officer role"

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.has_perm(roles.perm(roles.VIEW)))


class ApiView(APIView):
    permission_classes = [permissions.IsAuthenticated, CanViewPolicies]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """After authentication, permissions and throttles: text with a NUL character is refused here, for every
        query parameter and path segment, because PostgreSQL cannot compare text with NUL in it and answered 500
        (`?symbol=A%00B`, `/api/audit/a%00b`). Bodies are refused by DRF's own fields already."""
        super().initial(request, *args, **kwargs)
        found = {name: ["Null characters are not allowed."] for name, value in kwargs.items() if NUL in str(value)}
        for name, values in request.query_params.lists():
            if NUL in name or any(NUL in value for value in values):
                found[name.replace(NUL, "\\x00")] = ["Null characters are not allowed."]
        if found:
            raise serializers.ValidationError(found)

    def validated(self, serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
        if not isinstance(request.data, dict):
            raise serializers.ValidationError({"body": ["expected a JSON object"]})
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)
