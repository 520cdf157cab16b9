"""Completed runs → the samples the live exporter would have served, at a fixed step.

Each function writes whole series, one after the other, each in time order: OpenMetrics
forbids returning to a series once another one started, and promtool appends each series'
samples in order. Counting follows the live rule (exporter.state.store): a run counts once, by
id, when it completed inside the backfill, [start, end); `end` is the live exporter's watch
start, from which the live counters take over. The last-status and streak gauges come from
the live `State` itself, fed the runs in completion order.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from exporter.metrics.builder import FamilyBuilder
from exporter.state import Buckets, State
from exporter.state.histogram import Histogram
from exporter.state.statuses import WORKFLOW_TERMINAL
from exporter.state.updates import WorkflowUpdate

# Sample lines handed to the writer at a time: bounds memory whatever the range.
_CHUNK = 4096
# The closing sample sits this far before the end, so it precedes the first live scrape.
_BEFORE_END = 0.001

Sink = Callable[[str, list[str]], None]  # (family name, sample lines)


@dataclass(frozen=True, slots=True)
class Grid:
    """Sample times: every `step` from `start`, plus one just before `end`."""

    start: float
    end: float
    step: float

    def times(self) -> list[float]:
        count = math.ceil((self.end - self.start) / self.step)
        times = [self.start + i * self.step for i in range(count)]
        closing = self.end - _BEFORE_END
        if not times or times[-1] < closing:
            times.append(closing)
        return times


@dataclass(frozen=True, slots=True)
class Run:
    """A completed run of a workflow or a job, as the Insights run lists give it."""

    run_id: str
    status: str
    created_at: float  # workflows: created_at; jobs: started_at (what live orders them by)
    stopped_at: float
    duration: float  # live: workflows stopped - created, jobs stopped - started


def counted(runs: Iterable[Run], grid: Grid) -> list[Run]:
    """The runs the backfill counts, each once, in completion order."""
    seen: set[str] = set()
    kept = []
    for run in runs:
        if grid.start <= run.stopped_at < grid.end and run.run_id not in seen:
            seen.add(run.run_id)
            kept.append(run)
    kept.sort(key=lambda r: (r.stopped_at, r.run_id))
    return kept


class _Batched:
    """A family builder whose lines go to the sink in chunks."""

    def __init__(self, family: str, labels: dict[str, str], sink: Sink) -> None:
        self.family = family
        self.builder = FamilyBuilder(family, labels)
        self.sink = sink
        self.pending = 0

    def tick(self, lines: int = 1) -> None:
        self.pending += lines
        if self.pending >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        lines = self.builder.take_lines()
        if lines:
            self.sink(self.family, lines)
        self.pending = 0


def counters_and_histograms(
    counter: str,
    histogram: str,
    key: tuple[str, ...],
    runs: Sequence[Run],
    buckets: tuple[float, ...],
    grid: Grid,
    labels: dict[str, str],
    sink: Sink,
) -> None:
    """`counter` and `histogram` series per status of `runs` (counted, in completion order),
    each from 0 at the start of the grid."""
    statuses = sorted({run.status for run in runs})
    times = grid.times()
    runs_total = _Batched(counter, labels, sink)
    for status in statuses:
        stops = [r.stopped_at for r in runs if r.status == status]
        for t in times:
            runs_total.builder.add((*key, status), float(bisect_right(stops, t)), t)
            runs_total.tick()
    runs_total.flush()
    durations = _Batched(histogram, labels, sink)
    for status in statuses:
        mine = [r for r in runs if r.status == status]
        observed = Histogram(buckets)
        index = 0
        for t in times:
            while index < len(mine) and mine[index].stopped_at <= t:
                observed.observe(max(mine[index].duration, 0.0))
                index += 1
            durations.builder.add_histogram((*key, status), observed.freeze(), t)
            durations.tick(len(buckets) + 3)
    durations.flush()


def workflow_gauges(
    key: tuple[str, str, str], runs: Sequence[Run], grid: Grid, labels: dict[str, str], sink: Sink
) -> None:
    """circleci_workflow_last_completed_status and circleci_workflow_consecutive_failures,
    from the first completed run on: the live state's answers after each run completed."""
    if not runs:
        return
    project, branch, workflow = key
    state = State(watch_start=math.inf, buckets=Buckets((), (), ()), series_ttl=math.inf)
    changes: list[tuple[float, str, int]] = []  # (at, last completed status, streak)
    for run in runs:
        state.apply(
            WorkflowUpdate(
                project,
                branch,
                workflow,
                run.run_id,
                0,
                run.status,
                run.created_at,
                run.stopped_at,
                "",
            )
        )
        row = state.snapshot(run.stopped_at).workflows[key]
        assert row.last_completed_status is not None  # a completed run was just applied
        changes.append((run.stopped_at, row.last_completed_status, row.consecutive_failures))
    times = [t for t in grid.times() if t >= changes[0][0]]
    seen = {status for _, status, _ in changes}
    states = (*WORKFLOW_TERMINAL, *sorted(seen - set(WORKFLOW_TERMINAL)))
    change_times = [at for at, _, _ in changes]

    def current(t: float) -> tuple[str, int]:
        _, status, streak = changes[bisect_right(change_times, t) - 1]
        return status, streak

    status_family = _Batched("circleci_workflow_last_completed_status", labels, sink)
    for state_name in states:
        for t in times:
            status_family.builder.add((*key, state_name), float(current(t)[0] == state_name), t)
            status_family.tick()
    status_family.flush()
    streak_family = _Batched("circleci_workflow_consecutive_failures", labels, sink)
    for t in times:
        streak_family.builder.add(key, float(current(t)[1]), t)
        streak_family.tick()
    streak_family.flush()
