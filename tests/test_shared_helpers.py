"""Fixtures and helpers every test folder needs are defined once, in tests/conftest.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SHARED = {
    "the anyio_backend fixture": re.compile(r"^def anyio_backend\(", re.MULTILINE),
    "the installed command's path": re.compile(r"^EXPORTER = ", re.MULTILINE),
}


@pytest.mark.parametrize("what", SHARED)
def test_defined_only_in_the_root_conftest(what: str) -> None:
    where = [
        path.relative_to(TESTS).as_posix()
        for path in sorted(TESTS.rglob("*.py"))
        if SHARED[what].search(path.read_text())
    ]
    assert where == ["conftest.py"], f"{what}: import it from tests.conftest instead"
