import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import Run

from tests.conftest import EXPORTER


@pytest.fixture
def run(tmp_path: Path) -> Run:
    """Run `circleci-exporter` with a clean environment plus `env`."""

    def run_exporter(
        *args: str, env: dict[str, str] | None = None, command: list[str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if not k.upper().startswith("CIRCLECI_")}
        return subprocess.run(
            [*(command or [str(EXPORTER)]), *args],
            env={**base, **(env or {})},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run_exporter


@pytest.fixture
def config_file(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / "config.yaml"
        path.write_text(text)
        return path

    return write
