"""`circleci-exporter backfill` refuses what it cannot do in one line, before any request."""

from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import TOKEN, Run

# Nothing listens there: any request would fail with a different message.
CONFIG = "api:\n  url: http://127.0.0.1:9/api\nprojects:\n  - slug: gh/acme/api\n"


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (["--since", "100d"], "Insights keeps workflow and job runs for 90 days only"),
        (["--since", "soon"], "--since/--step: expected a duration"),
        (["--since", "1d", "--label", "no-equals"], "--label 'no-equals' is not NAME=VALUE"),
        (["--since", "1d", "--until", "yesterday"], "--until 'yesterday': expected now"),
        (["--since", "1h", "--step", "2h"], "--step 2h: must be positive and at most --since"),
    ],
    ids=["too-far-back", "bad-since", "bad-label", "bad-until", "step-beyond-since"],
)
def test_backfill_refuses_in_one_line(
    run: Run,
    config_file: Callable[[str], Path],
    tmp_path: Path,
    arguments: list[str],
    problem: str,
) -> None:
    out = tmp_path / "history.om"
    result = run(
        "backfill", "--config", str(config_file(CONFIG)), "--out", str(out), *arguments,
        env={"CIRCLECI_TOKEN": TOKEN},
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("circleci-exporter: backfill: "), result.stderr
    assert problem in lines[0]
    assert "Traceback" not in result.stderr and not out.exists()
