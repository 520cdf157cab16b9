"""Benchmark of the live collector's memory after a week of pipelines for many projects.

    .venv/bin/python bench/memory.py [--projects 500] [--runs 3] [--quick]

The real `ProjectCollector`s poll a simulated week, a cycle per project every `--step-hours`,
against an in-process API that answers from the simulator's `World` as it was at that moment
(the same JSON the simulator serves, parsed into the client's models). No HTTP: a week of 500
projects is about a million reads, and only what the collector keeps is measured here.

Each run is a child process (a fresh heap), and reports:
- the tracked-pipeline state: the bytes of every object reachable from the collectors' tracked
  pipelines (`deep_size`; the issue's target, <= 100 MB);
- the ids of jobs whose details were fetched, kept as long (measured the same way);
- the baseline: one pydantic `models.Pipeline` per tracked pipeline, the record kept before,
  measured the same way;
- the RSS growth of the process over the week (collectors and `State`).
(tracemalloc would measure the same, but tracing a million reads made a run take half an hour
on this machine.)

The world is a pure function of (seed, clock): every run tracks the same pipelines.
"""

from __future__ import annotations

import argparse
import bisect
import gc
import json
import statistics
import subprocess
import sys
import time
import types
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from _common import Row, print_parameters, print_table, rss_mb, spread, verdict

from exporter.circleci import models
from exporter.collect.project import ProjectCollector
from exporter.components import buckets
from exporter.settings import load_settings
from exporter.simulator import SimClock, SimConfig, World, serialize
from exporter.state import State

T_END = datetime(2026, 6, 8, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
PAGE = 20
TARGET_MB = 100.0
_NOT_DATA = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)


class WorldAsOf:
    """The API calls `ProjectCollector` makes, answered from `world` as it was at `now()`."""

    def __init__(self, world: World, now: Callable[[], float]) -> None:
        self.world = world
        self.now = now

    def _at(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    async def get_project(self, slug: str) -> models.Project:
        return models.Project.model_validate(serialize.project(self.world.project(slug)))

    async def iter_project_pipeline_pages(
        self, slug: str, *, branch: str | None = None, max_pages: int | None = None
    ) -> AsyncIterator[list[models.Pipeline]]:
        at = self._at()
        timeline = self.world.timeline(slug)
        pipelines = timeline.by_branch.get(branch, []) if branch else timeline.pipelines
        end = bisect.bisect_right(pipelines, at, key=lambda p: p.created_at)
        pages = 0
        while end > 0 and (max_pages is None or pages < max_pages):
            page = pipelines[max(0, end - PAGE) : end][::-1]
            yield [models.Pipeline.model_validate(serialize.pipeline(p, at)) for p in page]
            end -= PAGE
            pages += 1

    async def iter_pipeline_workflows(self, pipeline_id: str) -> AsyncIterator[models.Workflow]:
        at = self._at()
        pipeline = self.world.pipeline(pipeline_id)
        assert pipeline is not None
        for workflow in pipeline.workflows_at(at):
            yield models.Workflow.model_validate(serialize.workflow(workflow, at))

    async def iter_workflow_jobs(self, workflow_id: str) -> AsyncIterator[models.Job]:
        at = self._at()
        workflow = self.world.workflow(workflow_id)
        assert workflow is not None
        for job in workflow.jobs:
            yield models.Job.model_validate(serialize.job(job, at))


def deep_size(roots: Iterable[object]) -> int:
    """Bytes of every object reachable from `roots`, each counted once (`sys.getsizeof`);
    classes, modules and functions are not data and are left out. Objects shared with other
    structures (a pipeline id is also a key of `State`) are counted here too: an upper bound."""
    seen: set[int] = set()
    todo = list(roots)
    size = 0
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, _NOT_DATA):
            continue
        seen.add(id(obj))
        size += sys.getsizeof(obj)
        todo.extend(gc.get_referents(obj))
    return size


async def one_run(args: argparse.Namespace) -> dict[str, float]:
    """A week of polling in this process; the measurements as a JSON-able dict."""
    started = T_END - WEEK
    world = World(
        SimConfig(projects=args.projects, seed=args.seed, history=WEEK + timedelta(days=1)),
        SimClock.manual(T_END),
    )
    clock = [started.timestamp()]
    api = WorldAsOf(world, lambda: clock[0])
    slugs = [p.slug for p in world.projects]
    settings = load_settings(
        None,
        {
            "api": {"token": "bench"},
            "defaults": {"branches": args.branches.split(",")},
            "projects": [{"slug": slug} for slug in slugs],
            # Job details, tests and failed steps are per-job reads: they add nothing to the
            # tracked pipelines (each fetched job id is kept all the same, see below).
            "collect": {"tests": False, "job_details": False, "failed_steps": False},
        },
    )
    gc.collect()
    rss_before = rss_mb()
    state = State(
        watch_start=started.timestamp(),
        buckets=buckets(settings),
        series_ttl=settings.collect.series_ttl,
    )
    collectors = [
        ProjectCollector(
            project.slug,
            settings.branch_rules(project),
            client=api,  # type: ignore[arg-type]  # the calls a collector makes, no HTTP
            state=state,
            settings=settings.collect,
            clock=lambda: clock[0],
        )
        for project in settings.projects
    ]
    wall = time.perf_counter()
    step = args.step_hours * 3600
    while clock[0] < T_END.timestamp():
        clock[0] = min(T_END.timestamp(), clock[0] + step)
        for collector in collectors:
            await collector.cycle()
    wall = time.perf_counter() - wall
    gc.collect()
    rss_week = rss_mb() - rss_before
    tracked = sum(len(c._pipelines) for c in collectors)
    settled = sum(t.settled for c in collectors for t in c._pipelines.values())
    jobs = sum(len(c._details_fetched) for c in collectors)
    tracked_bytes = deep_size(c._pipelines for c in collectors)
    jobs_bytes = deep_size(c._details_fetched for c in collectors)
    # The baseline record: the tracked pipelines as the list serves them at the end, as models.
    kept = {pid for c in collectors for pid in c._pipelines}
    baseline_bytes = deep_size(
        models.Pipeline.model_validate(serialize.pipeline(p, T_END))
        for slug in slugs
        for p in world.timeline(slug).pipelines
        if p.id in kept
    )
    return {
        "tracked": tracked,
        "settled": settled,
        "jobs": jobs,
        "tracked_mb": tracked_bytes / 2**20,
        "tracked_per_pipeline": tracked_bytes / max(1, tracked),
        "jobs_mb": jobs_bytes / 2**20,
        "baseline_mb": baseline_bytes / 2**20,
        "baseline_per_pipeline": baseline_bytes / max(1, tracked),
        "rss_week_mb": rss_week,
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--step-hours", type=float, default=3.0, help="simulated time between two cycles"
    )
    parser.add_argument("--branches", default="*", help='tracked branches ("*": every one)')
    parser.add_argument("--quick", action="store_true", help="50 projects, one run")
    parser.add_argument("--one-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.projects, args.runs = 50, 1
    if args.one_run:
        print(json.dumps(anyio.run(one_run, args)))
        return
    print_parameters("bench/memory.py", args, hidden=("one_run",))
    runs: list[dict[str, Any]] = []
    for _ in range(args.runs):
        child = [sys.executable, __file__, "--one-run", *sys.argv[1:]]
        out = subprocess.run(child, check=True, capture_output=True, text=True).stdout
        runs.append(json.loads(out.splitlines()[-1]))

    def col(key: str) -> list[float]:
        return [float(r[key]) for r in runs]

    first = runs[0]
    tracked_mb = statistics.median(col("tracked_mb"))
    print_table(
        f"a week of {args.projects} projects, a cycle every {args.step_hours:g} h, branches "
        f"{args.branches!r}; median (min .. max) of {len(runs)} runs",
        [
            Row(
                "tracked pipelines after the week (settled)",
                f"{first['tracked']} ({first['settled']}), "
                f"{first['tracked'] / args.projects:.0f} per project",
            ),
            Row(
                f"tracked-pipeline state <= {TARGET_MB:g} MB",
                f"{spread(col('tracked_mb'), '.1f')} MB",
                verdict(tracked_mb <= TARGET_MB),
            ),
            Row("  per tracked pipeline", f"{spread(col('tracked_per_pipeline'), '.0f')} B"),
            Row(
                f"ids of jobs whose details were fetched ({first['jobs']})",
                f"{spread(col('jobs_mb'), '.1f')} MB",
            ),
            Row(
                "baseline: a models.Pipeline per tracked pipeline",
                f"{spread(col('baseline_mb'), '.1f')} MB, "
                f"{spread(col('baseline_per_pipeline'), '.0f')} B each",
            ),
            Row(
                "RSS growth over the week (collectors and State)",
                f"{spread(col('rss_week_mb'), '.0f')} MB",
            ),
            Row("wall time of the simulated week", f"{spread(col('wall_s'), '.0f')} s"),
        ],
    )


if __name__ == "__main__":
    main()
