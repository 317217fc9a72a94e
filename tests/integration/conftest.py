"""Integration fixtures of this folder's own (the servers and gates are in tests/conftest.py and tests/plugins)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.latch_stack import LatchStack
from tests.secured_stack import Secured


@pytest.fixture
async def latch_stack(secured: Secured, tmp_path: Path) -> AsyncIterator[LatchStack]:
    opened = await LatchStack(secured, tmp_path).open()
    yield opened
    await opened.close()
