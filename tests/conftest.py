"""Fixtures every test folder shares."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, the loop the exporter runs on."""
    return "asyncio"
