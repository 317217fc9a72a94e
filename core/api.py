"""The REST base every app's endpoints stand on: authenticated, and allowed to view policies (every role is)."""

from typing import Any

from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from core import roles


class CanViewPolicies(permissions.BasePermission):
    message = "you need the viewer, agent or risk-officer role"

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.has_perm(roles.perm(roles.VIEW)))


class ApiView(APIView):
    permission_classes = [permissions.IsAuthenticated, CanViewPolicies]

    def validated(self, serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
        if not isinstance(request.data, dict):
            raise serializers.ValidationError({"body": ["expected a JSON object"]})
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)
