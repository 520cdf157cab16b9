"""A whole backfill against the simulator: a valid, ordered OpenMetrics file whose counters
are the simulator's runs, a request estimate, clear limits, and resumption."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from exporter.backfill import command
from exporter.backfill.command import BackfillError
from exporter.catalog import BY_NAME
from exporter.circleci import CircleCIError
from exporter.metrics.exposition import family_header
from exporter.settings import OrgSettings
from exporter.simulator import World
from tests.unit.backfill.conftest import Backfill, options

pytestmark = pytest.mark.anyio

_SAMPLE = re.compile(r"^(\w+)(\{.*\}) (\S+) (\S+)$")
INSIGHTS_STATUSES = ("success", "failed", "error", "canceled", "unauthorized")


def samples(text: str) -> list[tuple[str, str, float, float]]:
    """(name, labels, value, timestamp) of every sample line, in file order."""
    found = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, line
        found.append((match[1], match[2], float(match[3]), float(match[4])))
    return found


def expected_runs(world: World, start: float, end: float) -> Counter[tuple[str, str, str]]:
    """(project, workflow, status) → runs completed in [start, end) on the default branch."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for project in world.projects:
        for workflow in world.workflows(project.slug, project.default_branch):
            stopped = workflow.stopped_at.timestamp()
            if workflow.final_status in INSIGHTS_STATUSES and start <= stopped < end:
                counts[(project.slug, workflow.name, workflow.final_status)] += 1
    return counts


async def test_counters_end_at_the_simulators_run_counts(
    backfill: Backfill, tmp_path: Path
) -> None:
    out = tmp_path / "history.om"
    await backfill.run(options(out))
    text = out.read_text()
    end = backfill.world.now().timestamp()
    last: dict[str, float] = {}
    for name, labels, value, _ in samples(text):
        if name == "circleci_workflow_runs_total":
            last[labels] = value
    found: Counter[tuple[str, str, str]] = Counter()
    for labels, value in last.items():
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        found[(pairs["project"], pairs["workflow"], pairs["status"])] = int(value)
    assert found == expected_runs(backfill.world, end - 7200.0, end)
    assert sum(found.values()) > 20, "the window should hold runs"
    assert "circleci_job_runs_total{" in text
    assert not out.with_name("history.om.checkpoint").exists()
    assert not out.with_name("history.om.parts").exists()


async def test_file_is_ordered_openmetrics(backfill: Backfill, tmp_path: Path) -> None:
    out = tmp_path / "history.om"
    await backfill.run(options(out))
    text = out.read_text()
    assert text.endswith("\n# EOF\n")
    # Each series in one piece, its samples in time order; each family in one piece.
    finished: set[str] = set()
    families_seen: list[str] = []
    current, previous_time = "", 0.0
    for name, labels, _, timestamp in samples(text):
        family = re.sub(r"_(bucket|count|sum)$", "", name)
        group = family + re.sub(r',?le="[^"]*"', "", labels)  # a histogram's buckets: one group
        if not families_seen or families_seen[-1] != family:
            assert family not in families_seen, f"{family} is split"
            families_seen.append(family)
        if group != current:
            assert group not in finished, f"{group} is split"
            finished.add(group)
            current, previous_time = group, timestamp
        assert timestamp >= previous_time, f"{group} goes back in time"
        previous_time = timestamp
    # prometheus_client checks the whole file; its parser drops all but the first bucket of a
    # histogram's second and later timestamps (it dedupes by series within a group), so the
    # histograms are checked one timestamp at a time, each a complete exposition.
    histograms = ("circleci_workflow_duration_seconds", "circleci_job_duration_seconds")
    without, by_time = [], defaultdict(list)
    for line in text.splitlines(keepends=True)[:-1]:
        if (
            line.startswith(histograms)
            or line.startswith(tuple(f"# HELP {h}" for h in histograms))
            or line.startswith(tuple(f"# TYPE {h}" for h in histograms))
        ):
            if not line.startswith("#"):
                by_time[line.rsplit(" ", 1)[1]].append(line)
        else:
            without.append(line)
    parsed = {f.name: f for f in text_string_to_metric_families("".join(without) + "# EOF\n")}
    assert parsed["circleci_workflow_runs"].type == "counter"
    assert parsed["circleci_workflow_last_completed_status"].type == "gauge"
    assert by_time
    headers = "".join(family_header(BY_NAME[h], openmetrics=True) for h in histograms)
    for lines in by_time.values():
        by_family = sorted(lines, key=lambda line: not line.startswith(histograms[0]))
        document = _with_headers(by_family, histograms) + "# EOF\n"
        for family in text_string_to_metric_families(document):
            assert family.type == "histogram" and family.samples
    assert headers


def _with_headers(lines: list[str], histograms: tuple[str, ...]) -> str:
    parts = []
    for name in histograms:
        mine = [line for line in lines if line.startswith(name + "_")]
        if mine:
            parts.append(family_header(BY_NAME[name], openmetrics=True))
            parts.extend(mine)
    return "".join(parts)


async def test_promtool_check_metrics_finds_nothing(backfill: Backfill, tmp_path: Path) -> None:
    """promtool lints the text format: the same samples under text headers, timestamps in ms."""
    out = tmp_path / "history.om"
    await backfill.run(options(out))
    text_format = []
    for line in out.read_text().splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            spec = BY_NAME.get(name) or BY_NAME[f"{name}_total"]
            text_format.append(family_header(spec, openmetrics=False))
        elif line.startswith("#"):
            continue
        else:
            head, timestamp = line.rsplit(" ", 1)
            text_format.append(f"{head} {round(float(timestamp) * 1000)}\n")
    check = _promtool_check_metrics("".join(text_format))
    assert check.returncode == 0 and not check.stdout and not check.stderr, check


def _promtool_check_metrics(text: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=120
    )


async def test_dry_run_reads_only_the_summaries(backfill: Backfill, tmp_path: Path) -> None:
    out = tmp_path / "history.om"
    await backfill.run(options(out, dry_run=True))
    printed = backfill.stdout.getvalue()
    assert re.search(r"^total: \d+ workflows, ~\d+ requests", printed, re.M), printed
    assert "build-and-test: ~" in printed
    assert not out.exists()
    run_lists = [p for p in backfill.api.paths if re.search(r"/workflows/[^/]+$", p)]
    assert not run_lists, "a dry run reads no run list"
    estimate = int(re.search(r"~(\d+) requests \(", printed)[1])  # type: ignore[index]
    backfill.api.paths.clear()
    await backfill.run(options(out))
    made = sum(backfill.api.paths.values())
    # The estimate reads the summaries' run counts; the run lists reach back a day earlier.
    assert estimate <= made <= 2 * estimate


async def test_since_beyond_what_insights_keeps_is_one_clear_line(
    backfill: Backfill, tmp_path: Path
) -> None:
    with pytest.raises(BackfillError) as caught:
        await backfill.run(options(tmp_path / "h.om", since=91 * 86400.0))
    message = str(caught.value)
    assert "90 days" in message and "\n" not in message
    assert not backfill.api.paths, "nothing is read"


async def test_an_interrupted_backfill_resumes_where_it_stopped(
    backfill: Backfill, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = tmp_path / "whole.om"
    await backfill.run(options(whole))
    monkeypatch.setattr(command, "_CONCURRENCY", 1)  # targets one after the other
    out = tmp_path / "history.om"
    project = backfill.world.projects[-1]
    backfill.api.fail = f"/insights/{project.slug}/workflows/[^/]+$"  # its run lists
    with pytest.raises(CircleCIError):
        await backfill.run(options(out))
    checkpoint = out.with_name("history.om.checkpoint")
    assert checkpoint.exists() and not out.exists()
    done = command.Checkpoint.load(checkpoint, options(out).arguments())
    assert done is not None and done.done, "the first project's workflows were written"
    backfill.api.fail = None
    backfill.api.paths.clear()
    await backfill.run(options(out))
    again = [p for p in backfill.api.paths if re.search(r"/workflows/[^/]+$", p)]
    for key in done.done:
        project_slug, _, workflow = json.loads(key)
        assert f"/insights/{project_slug}/workflows/{workflow}" not in again, "read twice"
    assert sorted(out.read_text().splitlines()) == sorted(whole.read_text().splitlines())
    assert not checkpoint.exists()


async def test_a_checkpoint_of_other_arguments_is_refused(
    backfill: Backfill, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(command, "_CONCURRENCY", 1)
    out = tmp_path / "history.om"
    backfill.api.fail = f"/insights/{backfill.world.projects[-1].slug}/workflows/[^/]+$"
    with pytest.raises(CircleCIError):
        await backfill.run(options(out))
    backfill.api.fail = None
    with pytest.raises(BackfillError, match="other arguments"):
        await backfill.run(options(out, step=60.0))


async def test_projects_of_orgs_are_discovered_as_live(backfill: Backfill, tmp_path: Path) -> None:
    project = backfill.world.projects[0]
    org = project.organization.slug
    backfill.settings = backfill.settings.model_copy(
        update={"projects": [], "orgs": [OrgSettings(slug=org)]}
    )
    await backfill.run(options(tmp_path / "h.om", dry_run=True))
    printed = backfill.stdout.getvalue()
    assert f"{project.slug} {project.default_branch} " in printed
