"""The browser the cockpit's tests drive: Debian's chromium through Playwright's Python package, never a browser
Playwright downloads. A missing chromium is installed (`apt-get install -y chromium`, as root) or the tests fail
saying why: a browser test that skips silently proves nothing."""

import os
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("CIO_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "cockpit-password-123"
GATE_ID = "cockpit-gate"
ALERT_ID = "cockpit-alert-1"
INCIDENT_ID = "cockpit-incident-1"
FAST_HASHES = [
    "django.contrib.auth.hashers.MD5PasswordHasher"
]  # the web runs tests.control_plane.fast_hashing_settings


def off_loop[T](work: Callable[..., T], *args: Any) -> T:
    """Run `work` (which runs its own event loop: `asyncio.run`) in a thread: Playwright's loop holds this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work, *args).result()


class BrowserMissingError(RuntimeError):
    pass


def ensure_chromium() -> Path:
    """The chromium binary, installed with apt when it is missing and we are root; raises when it cannot be had."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BrowserMissingError(
            f"{CHROMIUM} is missing and cannot be installed here: run `apt-get install -y chromium`"
        )
    done = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, text=True, timeout=900)
    if done.returncode != 0 or not CHROMIUM.exists():
        raise BrowserMissingError(f"apt-get install -y chromium failed ({done.returncode}): {done.stderr[-2000:]}")
    return CHROMIUM


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(ensure_chromium()), args=CHROMIUM_ARGS, headless=True)


def screenshot(page: Any, name: str, folder: Path) -> Path:
    """Save the page as `<name>.png`: into `CIO_SCREENSHOTS_DIR` when set (`make screenshots`: docs/screenshots,
    the README's "Screenshots"), else into `folder` (the test's own), so a test run leaves the committed ones be."""
    chosen = Path(os.environ.get("CIO_SCREENSHOTS_DIR") or folder)
    chosen.mkdir(parents=True, exist_ok=True)
    path = chosen / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(browser: Any, url: str, username: str = "officer1", path: str = "/admin/login/") -> Any:
    """A new browser context signed in through the admin's login form; returns its page, where the login landed."""
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(url + path)
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_load_state()
    return page
