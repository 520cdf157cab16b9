"""The README's Quick start and .ci/run agree: CI runs exactly the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def shell_blocks(markdown: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", markdown, flags=re.DOTALL)


def quick_start() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    blocks = shell_blocks(quick_start())
    assert len(blocks) == 3, "install, run the demo, run the tests"
    test_command = blocks[2].strip()
    ci_commands = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert ci_commands[-1] == test_command


def test_quick_start_runs_the_demo_from_the_installed_command() -> None:
    install, demo, _ = shell_blocks(quick_start())
    assert "pip install -e '.[test]'" in install
    assert demo.strip() == ".venv/bin/circleci-exporter --demo"
