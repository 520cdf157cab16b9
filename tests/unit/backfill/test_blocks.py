"""Cutting the file per promtool block window: every sample once, in a valid file of its own
window, series still whole and in order; and the real promtool makes one block per window."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from prometheus_client.openmetrics.parser import text_string_to_metric_families

from exporter.backfill.blocks import BLOCK_MS, create_blocks, split_beside, split_by_block
from exporter.backfill.rebuild import Grid, Run, counters_and_histograms, workflow_gauges
from exporter.catalog import BY_NAME
from exporter.metrics.exposition import family_header

KEY = ("gh/acme/api", "main", "build")
DAY = 86400.0
START = 1_780_000_000.0  # not on a block boundary


def write_file(path: Path) -> None:
    """Six hours and a half of two families at a 10-minute step, as the backfill writes them."""
    grid = Grid(START, START + 6.5 * 3600, 600.0)
    runs = [Run(str(i), "success" if i % 3 else "failed", START + i * 900, START + i * 900 + 300,
                300.0) for i in range(20)]  # fmt: skip
    parts: dict[str, list[str]] = {}

    def sink(family: str, lines: list[str]) -> None:
        parts.setdefault(family, []).extend(lines)

    counters_and_histograms(
        "circleci_workflow_runs_total", "circleci_workflow_duration_seconds", KEY, runs,
        (60.0, 600.0), grid, {}, sink,
    )  # fmt: skip
    workflow_gauges(KEY, runs, grid, {}, sink)
    with path.open("w") as out:
        for family, lines in parts.items():
            out.write(family_header(BY_NAME[family], openmetrics=True))
            out.writelines(lines)
        out.write("# EOF\n")


def samples(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_each_sample_lands_once_in_the_file_of_its_window(tmp_path: Path) -> None:
    source = tmp_path / "history.om"
    write_file(source)
    windows = tmp_path / "windows"
    windows.mkdir()
    parts = split_by_block(source, windows)
    assert len(parts) >= 4  # 6.5 hours not aligned on 2-hour blocks
    found: list[str] = []
    for part in parts:
        text = part.read_text()
        assert text.endswith("\n# EOF\n")
        window = int(part.stem)
        for line in samples(text):
            assert round(float(line.rsplit(" ", 1)[1]) * 1000) // BLOCK_MS == window
        # The non-histogram families parse as a whole (see test_command for histograms).
        without = "".join(
            line for line in text.splitlines(keepends=True)
            if "duration_seconds" not in line
        )  # fmt: skip
        families = {f.name for f in text_string_to_metric_families(without)}
        assert "circleci_workflow_runs" in families
        found += samples(text)
    assert sorted(found) == sorted(samples(source.read_text()))


def test_promtool_writes_one_block_per_window(tmp_path: Path) -> None:
    source = tmp_path / "history.om"
    write_file(source)
    data = tmp_path / "data"
    blocks = create_blocks("promtool", source, data)
    metas = [json.loads(meta.read_text()) for meta in data.glob("*/meta.json")]
    assert len(metas) == blocks >= 4
    assert sum(m["stats"]["numSamples"] for m in metas) == len(samples(source.read_text()))
    assert not list(tmp_path.glob("*.windows"))
    listed = subprocess.run(["promtool", "tsdb", "list", str(data)], capture_output=True)
    assert listed.returncode == 0


def test_split_beside_leaves_the_windows_for_promtool_elsewhere(tmp_path: Path) -> None:
    source = tmp_path / "history.om"
    write_file(source)
    (tmp_path / "history.om.windows").mkdir()
    (tmp_path / "history.om.windows" / "000000000001.om").write_text("stale\n")
    parts = split_beside(source)
    assert parts == sorted((tmp_path / "history.om.windows").glob("*.om"))
    assert all(p.read_text().endswith("# EOF\n") for p in parts)
