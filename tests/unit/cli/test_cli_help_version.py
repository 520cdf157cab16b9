"""`--help` and `--version`, from the console script and `python -m exporter`."""

import sys

import pytest
from cli_support import Run

from exporter import __version__

FLAGS = [
    "--config FILE",
    "--web.listen-address",
    "--web.telemetry-path",
    "--log.level",
    "--log.format",
    "--check-config",
    "--demo",
    "--version",
]


@pytest.mark.parametrize(
    "command", [None, [sys.executable, "-m", "exporter"]], ids=["script", "python-m"]
)
def test_help_lists_every_flag(run: Run, command: list[str] | None) -> None:
    result = run("--help", command=command)

    assert result.returncode == 0
    assert result.stdout.startswith("usage: circleci-exporter")
    for flag in FLAGS:
        assert flag in result.stdout
    assert "(:10027)" in result.stdout
    assert "(/metrics)" in result.stdout


def test_version(run: Run) -> None:
    result = run("--version")

    assert result.returncode == 0
    assert result.stdout == f"circleci-exporter {__version__}\n"


def test_unknown_flag_is_a_usage_error_not_a_traceback(run: Run) -> None:
    result = run("--web.listen-adress=:1")

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "circleci-exporter: error: unrecognized arguments: --web.listen-adress=:1"
    )
