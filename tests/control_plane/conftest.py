"""Control-plane tests: fixtures come from tests/plugins/control_plane.py (shared with the other Django-side
folders); what is this folder's own is here."""

import os
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _django_test_defaults(fresh_throttles: None, fast_password_hashing: None) -> None:
    """Each test starts with no throttle counts and hashes its users' passwords fast (tests/plugins)."""


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL row locks; runs in make test's PostgreSQL pass")
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)
