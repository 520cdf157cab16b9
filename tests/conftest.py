"""Fixtures and helpers every test folder shares; import a helper with
`from tests.conftest import ...`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests.rules.binaries import free_port, wait_until

# The installed `circleci-exporter` command of the interpreter running the tests.
EXPORTER = Path(sys.executable).parent / "circleci-exporter"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, the loop the exporter runs on."""
    return "asyncio"


def exposition_samples(body: str, *, openmetrics: bool = False) -> Samples:
    """Every sample of an exposition, by (name, labels), parsed by prometheus_client."""
    parse = parse_openmetrics if openmetrics else parse_text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in parse(body)
        for sample in family.samples
    }


@contextmanager
def running_demo(
    log_dir: Path, ready: Callable[[str], bool], what: str, within: float
) -> Iterator[str]:
    """`circleci-exporter --demo` on a free loopback port; yields its `host:port` once
    `ready(address)` holds, and stops it when the block ends."""
    address = f"127.0.0.1:{free_port()}"
    log_path = log_dir / "exporter.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(EXPORTER), "--demo", "--web.listen-address", address, "--log.level", "warning"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def check() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the demo exited: {log_path.read_text(errors='replace')}")
        try:
            return ready(address)
        except httpx.TransportError:
            return False

    try:
        wait_until(check, what, within)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=15)
