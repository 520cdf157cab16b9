"""Runs a backfill: plan, fetch the runs (through the exporter's rate-limited client), rebuild
the live families, write the OpenMetrics file, and optionally turn it into TSDB blocks."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx
from anyio.streams.memory import MemoryObjectSendStream
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from exporter.backfill import rebuild
from exporter.backfill.blocks import BlocksError, create_blocks, split_beside, windows_dir
from exporter.backfill.output import Checkpoint, CheckpointMismatch, OpenMetricsParts
from exporter.backfill.plan import Plan, WorkflowTarget, make_plan
from exporter.backfill.progress import Progress
from exporter.circleci import CircleCIClient, Transport, models
from exporter.components import buckets, build_client
from exporter.durations import format_duration
from exporter.settings import Settings
from exporter.state.keys import WorkflowKey

DAY = 86400.0
# Insights keeps workflow and job runs 90 days (docs/circleci-api.md §Insights freshness).
RETENTION = 90 * DAY
# The run lists filter on when a run was created: read this much earlier, so that a run
# created before the start and completed after it is counted too.
_EARLY = DAY
# Workflows fetched at once: enough to keep the rate limit busy, few enough that memory holds
# only a handful of workflows' runs.
_CONCURRENCY = 4
WATCH_START = "circleci_exporter_watch_start_timestamp_seconds"


class BackfillError(Exception):
    """A problem the user can fix, said in one line."""


@dataclass(frozen=True)
class Options:
    since: float
    out: Path
    step: float = 300.0
    until: str | None = None  # "now", Unix seconds or an RFC 3339 time
    exporter_url: str | None = None  # read the live exporter's watch start from its /metrics
    labels: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False
    checkpoint: Path | None = None
    promtool_dir: Path | None = None
    promtool: str = "promtool"
    split: bool = False  # also leave FILE.om.windows/, one file per promtool block window

    @property
    def checkpoint_path(self) -> Path:
        return self.checkpoint or self.out.with_name(self.out.name + ".checkpoint")

    def arguments(self) -> dict[str, Any]:
        """What a resumed run must share with the interrupted one."""
        return {
            "since": self.since,
            "step": self.step,
            "until": self.until,
            "exporter_url": self.exporter_url,
            "labels": self.labels,
        }


def parse_until(value: str, now: float) -> float:
    if value == "now":
        return now
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BackfillError(
            f"--until {value!r}: expected now, Unix seconds or a time like 2026-05-01T12:00:00Z"
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def read_watch_start(url: str) -> float:
    """The live exporter's `circleci_exporter_watch_start_timestamp_seconds`."""
    try:
        response = httpx.get(url, timeout=10.0)
        response.raise_for_status()
    except httpx.HTTPError as err:
        raise BackfillError(
            f"--exporter-url {url}: cannot read the exporter's metrics: {err}"
        ) from None
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == WATCH_START:
                return float(sample.value)
    raise BackfillError(f"--exporter-url {url}: no {WATCH_START} there (exporter too old?)")


def window(options: Options, now: float) -> tuple[float, float]:
    """[start, end) of the backfill; BackfillError when Insights no longer has the start."""
    if options.exporter_url is not None:
        end = read_watch_start(options.exporter_url)
    else:
        end = parse_until(options.until or "now", now)
    if end > now + 60:
        raise BackfillError(f"the backfill would end in the future ({_iso(end)})")
    if options.step <= 0 or options.step > options.since:
        raise BackfillError(
            f"--step {format_duration(options.step)}: must be positive and at most --since"
        )
    start = end - options.since
    if options.since > RETENTION or start < now - RETENTION:
        raise BackfillError(
            f"--since {format_duration(options.since)}: the backfill would start at "
            f"{_iso(start)}, but Insights keeps workflow and job runs for 90 days only "
            f"(since {_iso(now - RETENTION)}); hourly time series only for 48 hours"
        )
    return start, end


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _requests_made(registry: CollectorRegistry) -> int:
    return int(
        sum(
            sample.value
            for family in registry.collect()
            for sample in family.samples
            if sample.name == "circleci_exporter_api_requests_total"
        )
    )


@dataclass
class _Fetched:
    target: WorkflowTarget
    runs: list[rebuild.Run]
    jobs: list[tuple[str, list[rebuild.Run]]]


async def _fetch(
    client: CircleCIClient, target: WorkflowTarget, grid: rebuild.Grid, now: float
) -> _Fetched:
    early = max(grid.start - _EARLY, now - RETENTION + 60, grid.end - RETENTION + 60)
    since = datetime.fromtimestamp(min(early, grid.start), UTC)
    until = datetime.fromtimestamp(grid.end, UTC)
    runs = [
        _workflow_run(run)
        async for run in client.iter_workflow_runs(
            target.project, target.workflow, branch=target.branch, start_date=since, end_date=until
        )
        if run.stopped_at is not None and run.status is not None
    ]
    jobs = []
    for job in target.jobs:
        job_runs = [
            _job_run(run)
            async for run in client.iter_job_runs(
                target.project,
                target.workflow,
                job.name,
                branch=target.branch,
                start_date=since,
                end_date=until,
            )
            if run.stopped_at is not None and run.started_at is not None and run.status
        ]
        jobs.append((job.name, job_runs))
    return _Fetched(target, runs, jobs)


def _workflow_run(run: models.WorkflowRun) -> rebuild.Run:
    assert run.stopped_at is not None and run.status is not None
    created, stopped = run.created_at.timestamp(), run.stopped_at.timestamp()
    return rebuild.Run(run.id, run.status, created, stopped, stopped - created)


def _job_run(run: models.JobRun) -> rebuild.Run:
    assert run.stopped_at is not None and run.started_at is not None and run.status is not None
    started, stopped = run.started_at.timestamp(), run.stopped_at.timestamp()
    return rebuild.Run(run.id, run.status, started, stopped, stopped - started)


def _write(
    fetched: _Fetched,
    grid: rebuild.Grid,
    settings: Settings,
    options: Options,
    parts: OpenMetricsParts,
) -> tuple[int, int]:
    """Rebuild one workflow's series into the parts; returns (runs, job runs) counted."""
    target = fetched.target
    key = WorkflowKey(target.project, target.branch, target.workflow)
    labels = options.labels
    runs = rebuild.counted(fetched.runs, grid)
    histogram = buckets(settings)
    rebuild.counters_and_histograms(
        "circleci_workflow_runs_total",
        "circleci_workflow_duration_seconds",
        key,
        runs,
        histogram.workflow_duration,
        grid,
        labels,
        parts.write,
    )
    rebuild.workflow_gauges(key, runs, grid, labels, parts.write)
    job_runs = 0
    for job, raw in fetched.jobs:
        counted = rebuild.counted(raw, grid)
        job_runs += len(counted)
        rebuild.counters_and_histograms(
            "circleci_job_runs_total",
            "circleci_job_duration_seconds",
            (*key, job),
            counted,
            histogram.job_duration,
            grid,
            labels,
            parts.write,
        )
    return len(runs), job_runs


def _print_plan(plan: Plan, settings: Settings, out: TextIO) -> None:
    for target in plan.targets:
        job_runs = sum(job.runs for job in target.jobs)
        out.write(
            f"{target}: ~{target.runs} runs, "
            f"{len(target.jobs)} jobs with ~{job_runs} runs: ~{target.requests} requests\n"
        )
    rate = settings.api.requests_per_second
    out.write(
        f"total: {len(plan.targets)} workflows, ~{plan.requests} requests "
        f"({plan.discovery_requests} of them read the summaries above); at the rate limit of "
        f"{rate:g}/s that takes at least {format_duration(math.ceil(plan.requests / rate))}\n"
    )


async def run_backfill(
    settings: Settings,
    options: Options,
    *,
    transport: Transport | None = None,
    stdout: TextIO = sys.stdout,
    stderr: TextIO = sys.stderr,
    clock: Callable[[], float] = time.time,
) -> None:
    """Raises BackfillError for what the user can fix, CircleCIError when the API fails (the
    checkpoint keeps what was done)."""
    now = clock()
    checkpoint_path = options.checkpoint_path
    try:
        checkpoint = Checkpoint.load(checkpoint_path, options.arguments())
    except CheckpointMismatch as err:
        raise BackfillError(str(err)) from None
    if checkpoint is None:
        start, end = window(options, now)
        checkpoint = Checkpoint(options.arguments(), start, end)
    grid = rebuild.Grid(checkpoint.start, checkpoint.end, options.step)
    registry = CollectorRegistry(auto_describe=False)
    async with build_client(settings, registry, transport=transport) as client:
        targets = await make_plan(client, settings, (now - grid.start) / DAY)
        plan = Plan(tuple(targets), _requests_made(registry))
        if options.dry_run:
            stdout.write(f"backfill {_iso(grid.start)} .. {_iso(grid.end)}\n")
            _print_plan(plan, settings, stdout)
            return
        done = set(checkpoint.done)
        todo = [t for t in plan.targets if t.key not in done]
        parts_dir = options.out.with_name(options.out.name + ".parts")
        parts = OpenMetricsParts(parts_dir, checkpoint.sizes)
        progress = Progress(len(plan.targets), stderr, already_done=len(plan.targets) - len(todo))
        send, receive = anyio.create_memory_object_stream[_Fetched](0)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_fetch_all, client, todo, grid, now, send)
                async with receive:
                    async for fetched in receive:
                        runs, job_runs = await anyio.to_thread.run_sync(
                            _write, fetched, grid, settings, options, parts
                        )
                        checkpoint.done.append(fetched.target.key)
                        checkpoint.sizes = parts.sizes()
                        checkpoint.save(checkpoint_path)
                        requests = _requests_made(registry)
                        progress.advance(str(fetched.target), runs, job_runs, requests)
        except BaseExceptionGroup as group:
            parts.close()
            raise _first(group) from None
        progress.finish()
        parts.join(options.out)
        checkpoint_path.unlink()
    stderr.write(
        f"backfill: wrote {options.out} ({_iso(grid.start)} .. {_iso(grid.end)}, "
        f"{len(plan.targets)} workflows, {_requests_made(registry)} requests)\n"
    )
    if options.split:
        windows = await anyio.to_thread.run_sync(split_beside, options.out)
        stderr.write(f"backfill: {len(windows)} block windows in {windows_dir(options.out)}\n")
    if options.promtool_dir is not None:
        try:
            blocks = await anyio.to_thread.run_sync(
                create_blocks, options.promtool, options.out, options.promtool_dir
            )
        except BlocksError as err:
            raise BackfillError(str(err)) from None
        stderr.write(f"backfill: {blocks} blocks created in {options.promtool_dir}\n")


async def _fetch_all(
    client: CircleCIClient,
    targets: Sequence[WorkflowTarget],
    grid: rebuild.Grid,
    now: float,
    send: MemoryObjectSendStream[_Fetched],
) -> None:
    queue = iter(targets)
    async with send, anyio.create_task_group() as tg:
        for _ in range(_CONCURRENCY):
            tg.start_soon(_fetcher, client, queue, grid, now, send.clone())


async def _fetcher(
    client: CircleCIClient,
    queue: Iterator[WorkflowTarget],
    grid: rebuild.Grid,
    now: float,
    send: MemoryObjectSendStream[_Fetched],
) -> None:
    async with send:
        for target in queue:
            await send.send(await _fetch(client, target, grid, now))


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that stopped the fetchers (the others were cancelled because of it)."""
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return _first(error)
        if not isinstance(error, anyio.get_cancelled_exc_class()):
            return error
    return group
