"""bench/scale.py runs end to end at 10 quiet projects (on simulated time, in seconds), and
the requests per cycle it reports are what the exporter promises for quiet projects."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _row(output: str, target: str) -> list[str]:
    """The cells of the results row whose target starts with `target`."""
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith(target):
            return cells
    raise AssertionError(f"no row {target!r} in:\n{output}")


def test_ten_quiet_projects_cost_a_list_read_each_per_cycle_or_one_feed_read() -> None:
    done = subprocess.run(
        [sys.executable, "bench/scale.py", "--projects", "10", "--cold-projects", "0",
         "--shard-projects", "0", "--baseline-cycles", "2", "--no-plot"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    baseline = _row(done.stdout, "10 projects, baseline org_feed off")
    # A quiet project's cycle reads the first page of its pipeline list, and nothing else.
    assert re.match(r"10\.00 \(max 10; feed 0\.00, lists 10\.00, other 0\.00\)", baseline[1])
    assert _row(done.stdout, "simulator's count / transport's count")[2] == "ok"
    # With the org feed: one feed read per cycle, and each list once per project_refresh.
    feed = _row(done.stdout, "10 projects, org_feed on: <= 1 + N/20")
    assert re.match(
        r"1\.50 \(max \d+ in one cycle; feed 1\.00, lists 0\.50, other 0\.00\)", feed[1]
    )
    assert feed[2] == "ok"
