"""The brakes: who is failing, and when to stop listening to them.

Admin logins (passwords can be guessed) are decided *before* the password is checked, by buckets that only the
failing party fills:

- a browser that signed in to this account before (its device cookie, `devices.py`) has a bucket of its own:
  nobody else's failures touch it;
- any other attempt is counted per (account, client address): failures for a made-up user or another account,
  from the same address, never refuse this account;
- per account across addresses: past `CIO_AUTH_ACCOUNT_FAILURES_PER_MINUTE` the account is *on guard* and an
  address that has already failed against it in this window is refused at once (one guess per address instead
  of ten), while an address that has not failed is still heard.

API and MCP tokens (160 random bits, which no one guesses) are checked *first*: a valid token always passes, and
the brake only changes a failing attempt's answer from 401 to 429 once its address or its prefix has failed too
often. Windows are fixed, `WINDOW_S` from the first failure. Counts are read then written, so concurrent workers
may let a few attempts past a limit (one per worker at most); a bucket stops counting at its limit, so a flood of
failures costs reads, not writes.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import salted_hmac

from brakes.models import FailureWindow

WINDOW_S = 60
TOKEN_PREFIX_CHARS = 8  # as `ApiToken.prefix`


@dataclass(frozen=True)
class Refusal:
    retry_after_s: int


def _bucket(*parts: str) -> str:
    return salted_hmac("petrosa-cio.brakes", "\x1f".join(parts), algorithm="sha256").hexdigest()


def _live(buckets: list[str]) -> dict[str, FailureWindow]:
    windows = FailureWindow.objects.filter(bucket__in=buckets, ends_at__gt=timezone.now())
    return {window.bucket: window for window in windows}


def _failures(live: dict[str, FailureWindow], bucket: str) -> int:
    window = live.get(bucket)
    return window.failures if window else 0


def _refusal(until: datetime) -> Refusal:
    return Refusal(max(1, math.ceil((until - timezone.now()).total_seconds())))


def _ends(live: dict[str, FailureWindow], bucket: str) -> datetime:
    return live[bucket].ends_at


def _open(bucket: str) -> None:
    now = timezone.now()
    FailureWindow.objects.filter(ends_at__lte=now).delete()  # every expired window, so made-up names do not pile up
    try:
        with transaction.atomic():
            FailureWindow.objects.create(bucket=bucket, failures=1, ends_at=now + timedelta(seconds=WINDOW_S))
    except IntegrityError:  # another worker opened it first
        FailureWindow.objects.filter(bucket=bucket).update(failures=F("failures") + 1)


def _record(limits: dict[str, int], live: dict[str, FailureWindow]) -> None:
    for bucket, limit in limits.items():
        window = live.get(bucket)
        if window is None:
            _open(bucket)
        elif window.failures < limit:
            counted = FailureWindow.objects.filter(pk=window.pk, ends_at__gt=timezone.now())
            if not counted.update(failures=F("failures") + 1):
                _open(bucket)  # it expired in between


# -- admin logins -------------------------------------------------------------------------------------------------
def _login_buckets(username: str, address: str, device: str | None) -> tuple[str, str]:
    if device is not None:
        return _bucket("login-device", username, device), ""
    return _bucket("login", username, address), _bucket("login", username)


def login_refusal(username: str, address: str, device: str | None) -> Refusal | None:
    """Whether to refuse this login attempt without checking the password."""
    limit = settings.CIO_AUTH_FAILURES_PER_MINUTE
    mine, account = _login_buckets(username, address, device)
    live = _live([mine, account] if account else [mine])
    if account and _failures(live, account) >= settings.CIO_AUTH_ACCOUNT_FAILURES_PER_MINUTE:
        if _failures(live, mine) >= 1:  # until either window closes
            return _refusal(min(_ends(live, mine), _ends(live, account)))
        return None
    if _failures(live, mine) >= limit:
        return _refusal(_ends(live, mine))
    return None


def record_login_failure(username: str, address: str, device: str | None) -> None:
    mine, account = _login_buckets(username, address, device)
    limits = {mine: settings.CIO_AUTH_FAILURES_PER_MINUTE}
    if account:
        limits[account] = settings.CIO_AUTH_ACCOUNT_FAILURES_PER_MINUTE
    _record(limits, _live(list(limits)))


# -- API and MCP tokens -------------------------------------------------------------------------------------------
def token_failure(presented: str, address: str) -> Refusal | None:
    """Count a token that failed (after it was checked); a refusal when its address or its prefix had already
    failed too often, to answer 429 instead of 401."""
    by_address = _bucket("token-address", address)
    by_prefix = _bucket("token-prefix", presented[:TOKEN_PREFIX_CHARS])
    limits = {
        by_address: settings.CIO_AUTH_FAILURES_PER_MINUTE,
        by_prefix: settings.CIO_AUTH_ACCOUNT_FAILURES_PER_MINUTE,
    }
    live = _live(list(limits))
    over = [bucket for bucket, limit in limits.items() if _failures(live, bucket) >= limit]
    _record(limits, live)
    return _refusal(max(_ends(live, bucket) for bucket in over)) if over else None


def lift_all() -> int:
    """Forget every failure count (`manage.py lift_brakes`); how many windows there were."""
    deleted, _ = FailureWindow.objects.all().delete()
    return deleted
