"""The admin login with the brakes on (services.py): the attempt is refused before the password is checked when
this browser, or this address for this account, has failed too often; a browser that signs in gets a device
cookie (devices.py) so that others' failures never lock it out."""

from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

from brakes import addresses, devices, services

REFUSED = (
    "Too many failed sign-ins for this account from here: wait a minute and try again, or sign in from a browser "
    "you have signed in with before."
)


class BrakedLoginForm(AdminAuthenticationForm):
    def clean(self) -> dict[str, Any]:
        username, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if not username or not password:
            return super().clean()
        address = addresses.of_request(self.request)
        device = devices.device_of(self.request, username)
        if services.login_refusal(username, address, device) is not None:
            raise ValidationError(REFUSED, code="throttled")
        try:
            cleaned = super().clean()
        except ValidationError:
            if self.user_cache is None:  # a wrong password or no such user; not a staff check on a right one
                services.record_login_failure(username, address, device)
            raise
        self.request.brakes_signed_in = username  # type: ignore[union-attr]  # for `admin_login` to remember
        return cleaned


def admin_login(request: HttpRequest) -> HttpResponse:
    """`/admin/login/`: the admin's own login view, which also gives a browser that signed in its device cookie."""
    response = admin.site.login(request)
    username = getattr(request, "brakes_signed_in", None)
    if username and request.user.is_authenticated and response.status_code == 302:
        devices.remember(response, request, username)
    return response
