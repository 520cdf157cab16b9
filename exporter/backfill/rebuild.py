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

from exporter.metrics.builder import FamilyBuilder, format_number, timestamp_suffix
from exporter.state import Buckets, State
from exporter.state.histogram import Histogram
from exporter.state.keys import WorkflowKey
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


class _Lines:
    """Sample lines of one family on their way to the sink, a chunk at a time."""

    def __init__(self, family: str, sink: Sink) -> None:
        self.family = family
        self.sink = sink
        self.pending: list[str] = []

    def add(self, line: str) -> None:
        self.pending.append(line)
        if len(self.pending) >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.sink(self.family, self.pending)
            self.pending = []


def _stamps(times: Sequence[float]) -> list[str]:
    """Each time's line ending, formatted once for all the series of a workflow."""
    return [f"{timestamp_suffix(t)}\n" for t in times]


# Hand-written rather than FamilyBuilder.add per sample: 90 days at 5m are hundreds of millions
# of lines, and formatting the labels and the value again for each cost 4.4 us a line, which
# made bench/backfill.py wait on the writer (1.51 x the rate-limit bound). A series' line starts
# and its values change rarely, so they are built once per series and once per change (1.2 us
# a line; 1.09 x the bound), and only the timestamp differs from line to line.
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
    stamps = _stamps(times)
    counters = FamilyBuilder(counter, labels)
    out = _Lines(counter, sink)
    for status in statuses:
        start = counters.sample_prefix((*key, status))
        stops = [r.stopped_at for r in runs if r.status == status]
        done, text = -1, ""
        for t, stamp in zip(times, stamps, strict=True):
            count = bisect_right(stops, t)
            if count != done:
                done, text = count, start + format_number(float(count))
            out.add(text + stamp)
    out.flush()
    histograms = FamilyBuilder(histogram, labels)
    out = _Lines(histogram, sink)
    for status in statuses:
        starts = histograms.histogram_prefixes((*key, status), buckets)
        mine = [r for r in runs if r.status == status]
        observed = Histogram(buckets)
        index = 0
        texts: list[str] = []
        for t, stamp in zip(times, stamps, strict=True):
            changed = not texts
            while index < len(mine) and mine[index].stopped_at <= t:
                observed.observe(max(mine[index].duration, 0.0))
                index += 1
                changed = True
            if changed:
                data = observed.freeze()
                numbers = [float(c) for _, c in data.cumulative()]
                numbers += [float(data.count), data.total]
                texts = [a + format_number(n) for a, n in zip(starts, numbers, strict=True)]
            for text in texts:
                out.add(text + stamp)
    out.flush()


def workflow_gauges(
    key: WorkflowKey, runs: Sequence[Run], grid: Grid, labels: dict[str, str], sink: Sink
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
                project, branch, workflow, run.run_id, 0, run.status, run.created_at,
                run.stopped_at, "",
            )
        )  # fmt: skip
        row = state.snapshot(run.stopped_at).workflows[key]
        assert row.last_completed_status is not None  # a completed run was just applied
        changes.append((run.stopped_at, row.last_completed_status, row.consecutive_failures))
    times = [t for t in grid.times() if t >= changes[0][0]]
    stamps = _stamps(times)
    change_times = [at for at, _, _ in changes]
    current = [changes[bisect_right(change_times, t) - 1] for t in times]
    seen = {status for _, status, _ in changes}
    states = (*WORKFLOW_TERMINAL, *sorted(seen - set(WORKFLOW_TERMINAL)))
    status_family = FamilyBuilder("circleci_workflow_last_completed_status", labels)
    out = _Lines("circleci_workflow_last_completed_status", sink)
    for state_name in states:
        start = status_family.sample_prefix((*key, state_name))
        one, zero = start + format_number(1.0), start + format_number(0.0)
        for (_, status, _), stamp in zip(current, stamps, strict=True):
            out.add((one if status == state_name else zero) + stamp)
    out.flush()
    streak_family = FamilyBuilder("circleci_workflow_consecutive_failures", labels)
    out = _Lines("circleci_workflow_consecutive_failures", sink)
    start = streak_family.sample_prefix(key)
    for (_, _, streak), stamp in zip(current, stamps, strict=True):
        out.add(start + format_number(float(streak)) + stamp)
    out.flush()
