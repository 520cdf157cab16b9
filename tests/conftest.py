"""Fixtures and helpers every test folder shares; import a helper with
`from tests.conftest import ...`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests.rules.binaries import Server, free_port, running_process

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
def running_demo(work_dir: Path) -> Iterator[Server]:
    """`circleci-exporter --demo` on a free loopback port, once `/readyz` answers 200; its
    output goes to `work_dir/exporter.log`. Stopped when the block ends."""
    port = free_port()
    command = [
        str(EXPORTER), "--demo",
        "--web.listen-address", f"127.0.0.1:{port}",
        "--log.level", "warning",
    ]  # fmt: skip
    with running_process("exporter", command, port, work_dir, ready_path="/readyz") as server:
        yield server
