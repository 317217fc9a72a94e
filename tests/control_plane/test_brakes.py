"""The brakes on guessing, against the web server as `make up` runs it (uvicorn in its own process, over real
HTTP): whoever fails is slowed down and refused, and nobody else is. Every client of these tests connects from
127.0.0.1, like everyone behind an ingress that does not pass the client on; other peers bind 127.0.0.2; behind
`CIO_TRUSTED_PROXIES=127.0.0.1/32` the test plays the ingress and names each client in X-Forwarded-For."""

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from io import StringIO
from typing import Any

import httpx2
import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from brakes.login import REFUSED
from brakes.models import FailureWindow
from policies.models import ApiToken
from tests.audit.ingest_helpers import database_url
from tests.control_plane.web import running_web

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = settings.CIO_AUTH_FAILURES_PER_MINUTE
ACCOUNT_LIMIT = settings.CIO_AUTH_ACCOUNT_FAILURES_PER_MINUTE
PROXY = "127.0.0.1/32"


@pytest.fixture
def serve(stack: Any, tmp_path: Any, transactional_db: None) -> Any:
    """`with serve() as url:` a web server; `serve(PROXY)` one that trusts the test as its ingress."""

    @contextmanager
    def start(trusted_proxies: str = "") -> Iterator[str]:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.control_plane.fast_hashing_settings",
            "DATABASE_URL": database_url(),
            "NATS_URL": stack.NATS_URL,
            "REDIS_URL": stack.REDIS_URL,
            "CIO_STATE_DIR": str(tmp_path / "state"),
            "CIO_POLICY_SIGNING_KEY_FILE": str(stack.CIO_POLICY_SIGNING_KEY_FILE),
            "CIO_AUDIT_STORE": "django",
            "CIO_TRUSTED_PROXIES": trusted_proxies,
        }
        with running_web(env, tmp_path / "web.log") as url:
            yield url

    return start


@pytest.fixture
def tokens(users: Any) -> dict[str, str]:
    return {name: ApiToken.issue(user)[1] for name, user in users.items()}


def http(url: str, *, peer: str = "127.0.0.1", client: str | None = None) -> httpx2.Client:
    headers = {"X-Forwarded-For": client} if client else {}
    transport = httpx2.HTTPTransport(local_address=peer)
    return httpx2.Client(base_url=url, headers=headers, transport=transport, timeout=30)


def with_token(key: str, client: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Token {key}", **({"X-Forwarded-For": client} if client else {})}


def halt(http_client: httpx2.Client, token: str) -> httpx2.Response:
    payload = {"scope": "global", "state": "halted", "reason": "kill switch under attack"}
    return http_client.post("/api/trading-state", json=payload, headers=with_token(token))


class Browser:
    """The admin login page, as a browser uses it (CSRF cookie and form token, cookies kept)."""

    def __init__(self, url: str, *, peer: str = "127.0.0.1", client: str | None = None) -> None:
        self.http = http(url, peer=peer, client=client)
        self._csrf: str | None = None

    def sign_in(self, username: str, password: str) -> str:
        """ "in", "wrong" or "refused"."""
        if self._csrf is None:
            page = self.http.get("/admin/login/")
            found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            assert found, page.text[:500]
            self._csrf = found.group(1)
        form = {"username": username, "password": password, "csrfmiddlewaretoken": self._csrf, "next": "/admin/"}
        response = self.http.post("/admin/login/", data=form)
        if response.status_code == 302:
            self._csrf = None  # Django rotates the CSRF secret at login
            self.http.cookies.delete("sessionid")  # signed out again: the next sign-in starts from scratch
            return "in"
        assert response.status_code == 200, response.status_code
        if REFUSED in response.text.replace("&#x27;", "'"):
            return "refused"
        assert "correct username and password" in response.text
        return "wrong"


def password(name: str) -> str:
    return f"{name}-password-123"


# -- tokens (REST) ------------------------------------------------------------------------------------------------
def test_failed_tokens_from_a_shared_address_never_refuse_an_officers_kill_switch(serve, tokens, active_v1):
    with serve() as url, http(url) as attacker, http(url) as officer:
        statuses = [attacker.get("/api/policy", headers=with_token(f"guess-{i:04d}")).status_code for i in range(50)]
        assert statuses == [401] * LIMIT + [429] * (50 - LIMIT)
        refused = attacker.get("/api/policy", headers=with_token("guess-more"))
        assert refused.json()["error"]["code"] == "RATE_LIMITED" and int(refused.headers["Retry-After"]) >= 1

        halted = halt(officer, tokens["officer1"])
        assert halted.status_code == 201, halted.text
        assert officer.get("/api/trading-state", headers=with_token(tokens["viewer"])).json()["data"]["global"] == (
            "halted"
        )
        assert attacker.get("/api/policy", headers=with_token("guess-again")).status_code == 429


def test_every_web_process_sees_the_same_counts(serve, tokens):
    with serve() as first, serve() as second, http(first) as a, http(second) as b:
        statuses = [
            (a if i % 2 else b).get("/api/gate", headers=with_token(f"guess-{i:04d}")).status_code
            for i in range(LIMIT + 2)
        ]
        assert statuses == [401] * LIMIT + [429] * 2
        assert b.get("/api/gate", headers=with_token(tokens["viewer"])).status_code == 200


def test_spoofed_forwarded_for_is_ignored_without_trusted_proxies(serve, tokens):
    with serve() as url, http(url) as attacker, http(url, peer="127.0.0.2") as neighbour:
        statuses = [
            attacker.get("/api/gate", headers=with_token(f"guess-{i:04d}", client=f"203.0.113.{i}")).status_code
            for i in range(LIMIT + 3)
        ]
        assert statuses == [401] * LIMIT + [429] * 3  # one address, whatever it claims
        assert neighbour.get("/api/gate", headers=with_token("mistyped")).status_code == 401
        assert neighbour.get("/api/gate", headers=with_token(tokens["viewer"])).status_code == 200


def test_behind_trusted_proxies_the_client_is_the_rightmost_hop_they_vouch_for(serve, tokens):
    with serve(PROXY) as url, http(url) as ingress, http(url, peer="127.0.0.2") as stranger:
        # The attacker prepends a fresh fake address each time; the ingress appends the one it saw.
        statuses = [
            ingress.get("/api/gate", headers=with_token(f"g-{i:04d}", client=f"10.9.9.{i}, 203.0.113.7")).status_code
            for i in range(LIMIT + 2)
        ]
        assert statuses == [401] * LIMIT + [429] * 2
        # Another client behind the same ingress has its own count, and a valid token passes for everyone.
        assert ingress.get("/api/gate", headers=with_token("mistyped", client="198.51.100.9")).status_code == 401
        assert ingress.get("/api/gate", headers=with_token(tokens["viewer"], client="203.0.113.7")).status_code == 200
        # A peer that is not a trusted proxy is counted as itself, whatever it forwards.
        assert stranger.get("/api/gate", headers=with_token("mistyped", client="203.0.113.7")).status_code == 401


def test_guessing_one_token_from_many_addresses_meets_the_prefix_brake(serve, tokens):
    with serve(PROXY) as url, http(url) as ingress:
        for i in range(ACCOUNT_LIMIT):
            guess = with_token(f"deadbeef{i:032x}", client=f"203.0.113.{i + 1}")
            assert ingress.get("/api/gate", headers=guess).status_code == 401
        same_prefix = with_token("deadbeef" + "0" * 32, client="198.51.100.1")
        assert ingress.get("/api/gate", headers=same_prefix).status_code == 429
        assert ingress.get("/api/gate", headers=with_token("cafef00d", client="198.51.100.1")).status_code == 401
        assert ingress.get("/api/gate", headers=with_token(tokens["viewer"], client="198.51.100.1")).status_code == 200


# -- admin logins -------------------------------------------------------------------------------------------------
def test_failures_for_other_accounts_from_a_shared_address_never_refuse_an_officer(serve, users):
    with serve() as url:
        attacker = Browser(url)
        made_up = [attacker.sign_in("ghost-officer", f"guess-{i}") for i in range(50)]
        assert made_up == ["wrong"] * LIMIT + ["refused"] * (50 - LIMIT)
        other = [attacker.sign_in("officer2", f"guess-{i}") for i in range(50)]
        assert other == ["wrong"] * LIMIT + ["refused"] * (50 - LIMIT)
        assert attacker.sign_in("officer2", password("officer2")) == "refused"  # even a right guess, now

        assert Browser(url).sign_in("officer1", password("officer1")) == "in"


def test_a_browser_that_signed_in_before_is_not_locked_out_by_guesses_at_its_account(serve, users):
    with serve() as url:
        officer = Browser(url)
        assert officer.sign_in("officer1", password("officer1")) == "in"  # yesterday: the device cookie

        attacker = Browser(url)
        guesses = [attacker.sign_in("officer1", f"guess-{i}") for i in range(50)]
        assert guesses == ["wrong"] * LIMIT + ["refused"] * (50 - LIMIT)
        assert attacker.sign_in("officer1", password("officer1")) == "refused"

        assert officer.sign_in("officer1", password("officer1")) == "in"
        # The documented trade-off: a browser never signed in before, on the same address as the guesser, waits.
        assert Browser(url).sign_in("officer1", password("officer1")) == "refused"


def test_a_device_cookie_is_no_skeleton_key(serve, users):
    with serve() as url:
        officer = Browser(url)
        assert officer.sign_in("officer1", password("officer1")) == "in"
        attacker = Browser(url)
        for account in ("officer1", "officer2"):
            assert [attacker.sign_in(account, "guess") for _ in range(LIMIT)] == ["wrong"] * LIMIT
        cookie = officer.http.cookies["cio_device"]
        # Copied to another browser it still names officer1's device; tampered with, it names nothing.
        assert with_device(Browser(url), officer, cookie).sign_in("officer1", password("officer1")) == "in"
        tampered = cookie[:-4] + ("aaaa" if not cookie.endswith("aaaa") else "bbbb")
        assert with_device(Browser(url), officer, tampered).sign_in("officer1", password("officer1")) == "refused"
        # It counts for nothing on another account ...
        assert officer.sign_in("officer2", password("officer2")) == "refused"
        # ... and its own failures are limited like an address's.
        assert [officer.sign_in("officer1", "typo") for _ in range(LIMIT + 1)] == ["wrong"] * LIMIT + ["refused"]
        assert officer.sign_in("officer1", password("officer1")) == "refused"


def with_device(browser: Browser, source: Browser, value: str) -> Browser:
    """`browser` holding a device cookie with `value`, set as `source` received its own."""
    received = next(c for c in source.http.cookies.jar if c.name == "cio_device")
    browser.http.cookies.set("cio_device", value, domain=received.domain, path=received.path)
    return browser


def test_guessing_one_account_from_many_addresses_is_slowed_but_the_officer_gets_in(serve, users):
    with serve(PROXY) as url:
        spread = [Browser(url, client=f"203.0.113.{i + 1}") for i in range(ACCOUNT_LIMIT)]
        assert [b.sign_in("officer1", "guess") for b in spread] == ["wrong"] * ACCOUNT_LIMIT
        # The account is on guard: an address that failed is refused at once, even with the right password ...
        assert spread[0].sign_in("officer1", password("officer1")) == "refused"
        # ... a new address gets one guess instead of ten ...
        newcomer = Browser(url, client="198.51.100.1")
        assert [newcomer.sign_in("officer1", "guess") for _ in range(2)] == ["wrong", "refused"]
        # ... other accounts are not on guard, and the officer, from an address that has not failed, gets in.
        assert [spread[0].sign_in("officer2", "guess") for _ in range(2)] == ["wrong", "wrong"]
        assert Browser(url, client="198.51.100.50").sign_in("officer1", password("officer1")) == "in"


def test_spoofed_forwarded_for_does_not_buy_more_password_guesses(serve, users):
    with serve() as url:
        attempts = [Browser(url, client=f"203.0.113.{i}").sign_in("officer1", "guess") for i in range(LIMIT + 1)]
        assert attempts == ["wrong"] * LIMIT + ["refused"]


def test_the_brake_lets_go_when_its_window_closes(serve, users):
    with serve() as url:
        attacker = Browser(url)
        assert [attacker.sign_in("officer2", "guess") for _ in range(LIMIT + 1)] == ["wrong"] * LIMIT + ["refused"]
        buckets = list(FailureWindow.objects.values_list("bucket", flat=True))
        assert len(buckets) == 2  # (officer2, this address) and officer2 everywhere, as HMACs: no names stored
        assert all(re.fullmatch("[0-9a-f]{64}", bucket) for bucket in buckets)
        FailureWindow.objects.update(ends_at=timezone.now() - timedelta(seconds=1))
        assert attacker.sign_in("officer2", "guess") == "wrong"
        assert FailureWindow.objects.count() == 2  # the expired windows were cleared when new ones opened
        assert sorted(FailureWindow.objects.values_list("failures", flat=True)) == [1, 1]


def test_an_operator_can_lift_the_brakes_at_once(serve, users):
    with serve() as url:
        attacker = Browser(url)
        assert [attacker.sign_in("officer1", "guess") for _ in range(LIMIT + 1)] == ["wrong"] * LIMIT + ["refused"]
        assert Browser(url).sign_in("officer1", password("officer1")) == "refused"
        out = StringIO()
        call_command("lift_brakes", stdout=out)
        assert "lifted 2 brake windows" in out.getvalue()
        assert Browser(url).sign_in("officer1", password("officer1")) == "in"
