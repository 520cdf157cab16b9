"""The Insights collector: every tracked project's (and org's) Insights, on a slow schedule.

CircleCI recomputes Insights about daily (docs/circleci-api.md §Insights freshness), so a sweep
every `insights_interval` (15 min by default) is plenty; it runs independently of the live
collector.

Sharing the API budget: a sweep issues its requests strictly one at a time, project after
project, awaiting each before sending the next. The shared `RateLimiter` hands out tokens in
arrival order (its turn lock is FIFO), so at most one Insights request ever waits ahead of the
live collector's requests, and live polling keeps its cadence however long a sweep takes.

Not polled here (they feed a backfill): workflow runs, job runs and the time-series endpoints.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple, TypeVar

import anyio

from exporter.circleci import CircleCIClient, CircleCIError, models
from exporter.collect.branches import BranchPolicy
from exporter.collect.telemetry import CollectTelemetry
from exporter.settings import Settings
from exporter.state import State
from exporter.state.insights import (
    InsightsStore,
    OrgInsights,
    ProjectInsights,
    RunStats,
    UsageStats,
    WorkflowStats,
)
from exporter.state.keys import (
    BranchJobKey,
    BranchTestKey,
    BranchWorkflowKey,
    FlakyTestKey,
    TrendKey,
)

logger = logging.getLogger(__name__)

COLLECTOR = "insights"
# The trend keys of the workflow summary (getWorkflowSummary `trends`), used as `metric` label.
TREND_KEYS = (
    "total_runs",
    "failed_runs",
    "success_rate",
    "p95_duration_secs",
    "median_duration_secs",
    "total_credits_used",
    "mttr",
    "throughput",
)
# `stat` label → DurationMetrics field
_DURATION_STATS = (
    ("min", "min"),
    ("mean", "mean"),
    ("median", "median"),
    ("p95", "p95"),
    ("max", "max"),
    ("stddev", "standard_deviation"),
)

_K = TypeVar("_K", bound=tuple[str, ...])


def run_stats(metrics: models.WorkflowMetrics | models.JobMetrics) -> RunStats:
    durations = {
        stat: float(value)
        for stat, field in _DURATION_STATS
        if (value := getattr(metrics.duration_metrics, field)) is not None
    }
    credits = metrics.total_credits_used
    return RunStats(
        runs=metrics.total_runs,
        successful_runs=metrics.successful_runs,
        failed_runs=metrics.failed_runs,
        success_rate=metrics.success_rate,
        throughput_per_day=metrics.throughput,
        credits_used=None if credits is None else float(credits),
        durations=durations,
    )


def workflow_stats(metrics: models.WorkflowMetrics) -> WorkflowStats:
    # MTTR is "empty if there were no failures" (insights-glossary); some answers carry 0
    # instead, which would read as "recovers instantly".
    mttr = metrics.mttr if metrics.failed_runs > 0 else None
    return WorkflowStats(run_stats(metrics), mttr)


def usage_stats(metrics: models.UsageMetrics) -> UsageStats:
    def number(value: float | None) -> float | None:
        return None if value is None else float(value)

    return UsageStats(
        runs=metrics.total_runs,
        success_rate=metrics.success_rate,
        throughput_per_day=metrics.throughput,
        credits_used=number(metrics.total_credits_used),
        runtime_seconds=number(metrics.total_duration_secs),
    )


def project_slug_of(org_slug: str, project_name: str) -> str:
    """The org summary names projects; an OAuth org's slug is `<org-slug>/<name>`, while a
    standalone org's project slugs hold opaque ids (docs/circleci-api.md §Slugs), so there
    the name stays."""
    if org_slug.startswith("circleci/"):
        return project_name
    return f"{org_slug}/{project_name}"


def top(values: Mapping[_K, float], limit: int) -> dict[_K, float]:
    """The `limit` highest values (ties by key, so the cut is stable from sweep to sweep)."""
    ranked = sorted(values.items(), key=lambda item: (-item[1], item[0]))
    return dict(ranked[:limit])


def _keep_max(into: dict[_K, float], key: _K, value: float) -> None:
    # Two entries may differ only in fields that are not labels (e.g. `file`): one series each.
    into[key] = max(value, into.get(key, value))


class Scope(NamedTuple):
    """One branch an Insights sweep reads: its `branch` label, and the `branch` query that
    asks for it (None: Insights' default branch)."""

    label: str
    query: str | None


class ProjectSweep:
    """Reads one project's Insights into a `ProjectInsights`; every request is awaited in turn."""

    def __init__(
        self,
        client: CircleCIClient,
        slug: str,
        *,
        window: models.ReportingWindow,
        top_tests: int,
        top_flaky: int,
    ) -> None:
        self.client = client
        self.slug = slug
        self.window = window
        self.top_tests = top_tests
        self.top_flaky = top_flaky
        self._workflows: dict[BranchWorkflowKey, WorkflowStats] = {}
        self._test_runs: dict[BranchWorkflowKey, int] = {}
        self._trends: dict[TrendKey, float] = {}
        self._jobs: dict[BranchJobKey, RunStats] = {}
        self._failed_tests: dict[BranchTestKey, float] = {}
        self._slow_tests: dict[BranchTestKey, float] = {}

    async def read(self, policy: BranchPolicy) -> ProjectInsights:
        known = (await self.client.get_insights_branches(self.slug)).branches
        default = policy.default_branch
        if default is None:  # the live collector has not read the project yet
            default = (await self.client.get_project(self.slug)).vcs_info.default_branch
        for label, branch in self.scopes(policy, default, known):
            await self._read_branch(label, branch)
        flaky = await self.client.get_flaky_tests(self.slug)
        return ProjectInsights(
            project=self.slug,
            window=self.window,
            branches=len(known),
            workflows=self._workflows,
            test_runs=self._test_runs,
            trends=self._trends,
            jobs=self._jobs,
            failed_tests=self._failed_tests,
            slow_tests=self._slow_tests,
            flaky_total=flaky.total_flaky_tests,
            flaky_tests=self._flaky(flaky.flaky_tests),
        )

    @staticmethod
    def scopes(policy: BranchPolicy, default: str | None, known: list[str]) -> list[Scope]:
        """The default branch, asked for without a branch (Insights' own default scope), then
        each tracked branch Insights knows, globs included."""
        scopes = [] if default is None else [Scope(default, None)]
        for branch in sorted(set(known) - {default}):
            place = policy.place(branch, None)
            if place is not None and not place.folded:
                scopes.append(Scope(branch, branch))
        return scopes

    async def _read_branch(self, label: str, branch: str | None) -> None:
        workflows = [
            w
            async for w in self.client.iter_workflow_metrics(
                self.slug, branch=branch, reporting_window=self.window
            )
        ]
        for workflow in workflows:
            self._workflows[BranchWorkflowKey(label, workflow.name)] = workflow_stats(
                workflow.metrics
            )
            await self._read_workflow(label, branch, workflow.name)

    async def _read_workflow(self, label: str, branch: str | None, workflow: str) -> None:
        summary = await self.client.get_workflow_summary(self.slug, workflow, branch=branch)
        for trend in TREND_KEYS:
            ratio = getattr(summary.trends, trend)
            if ratio is not None:
                self._trends[TrendKey(label, workflow, trend)] = ratio
        async for job in self.client.iter_workflow_job_metrics(
            self.slug, workflow, branch=branch, reporting_window=self.window
        ):
            self._jobs[BranchJobKey(label, workflow, job.name)] = run_stats(job.metrics)
        tests = await self.client.get_workflow_test_metrics(self.slug, workflow, branch=branch)
        self._test_runs[BranchWorkflowKey(label, workflow)] = tests.total_test_runs
        failed: dict[BranchTestKey, float] = {}
        for test in tests.most_failed_tests:
            key = BranchTestKey(
                label, workflow, test.job_name, test.test_name, test.classname or ""
            )
            _keep_max(failed, key, float(test.failed_runs))
        slow: dict[BranchTestKey, float] = {}
        for test in tests.slowest_tests:
            if test.p95_duration is not None:
                key = BranchTestKey(
                    label, workflow, test.job_name, test.test_name, test.classname or ""
                )
                _keep_max(slow, key, test.p95_duration)
        self._failed_tests.update(top(failed, self.top_tests))
        self._slow_tests.update(top(slow, self.top_tests))

    def _flaky(self, tests: list[models.FlakyTest]) -> dict[FlakyTestKey, float]:
        flaky: dict[FlakyTestKey, float] = {}
        for test in tests:
            key = FlakyTestKey(
                test.workflow_name or "", test.job_name, test.test_name, test.classname or ""
            )
            _keep_max(flaky, key, float(test.times_flaked))
        return top(flaky, self.top_flaky)


async def read_org(client: CircleCIClient, org: str, window: models.ReportingWindow) -> OrgInsights:
    summary = await client.get_org_summary(org, reporting_window=window)
    return OrgInsights(
        org=org,
        window=window,
        totals=usage_stats(summary.org_data.metrics),
        projects={
            project_slug_of(org, row.project_name): usage_stats(row.metrics)
            for row in summary.org_project_data
        },
    )


class InsightsCollector:
    """Sweeps the tracked projects, then their orgs, every `collect.insights_interval`.

    `tracked()` gives the projects the live collector tracks now (discovered ones included),
    each with its branch policy; `orgs()` the orgs whose summary this replica reads (with
    sharding, each org's summary is read by one shard only).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        client: CircleCIClient,
        state: State,
        store: InsightsStore,
        tracked: Callable[[], Mapping[str, BranchPolicy]],
        orgs: Callable[[], Iterable[str]],
        on_sweep: Callable[[], None],
        telemetry: CollectTelemetry,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.client = client
        self.state = state
        self.store = store
        self.tracked = tracked
        self.orgs = orgs
        self.on_sweep = on_sweep
        self.telemetry = telemetry
        self.clock = clock
        self.sweeps = 0

    async def run(self) -> None:
        interval = self.settings.collect.insights_interval
        while True:
            started = anyio.current_time()
            await self.sweep()
            await anyio.sleep(max(0.0, interval - (anyio.current_time() - started)))

    async def sweep(self) -> None:
        """One pass over every tracked project and org; a failure of one never stops the rest."""
        projects = dict(self.tracked())
        for slug in sorted(projects):
            await self.collect_project(slug, projects[slug])
            self.on_sweep()
        for org in sorted(set(self.orgs())):
            await self.collect_org(org)
        self.on_sweep()
        self.sweeps += 1

    async def collect_project(self, slug: str, policy: BranchPolicy) -> None:
        """Replace the project's Insights; on failure keep the last known ones."""
        started = anyio.current_time()
        sweep = ProjectSweep(
            self.client,
            slug,
            window=self.settings.collect.insights_window,
            top_tests=self.settings.insights.top_tests,
            top_flaky=self.settings.insights.top_flaky_tests,
        )
        try:
            insights = await sweep.read(policy)
        except CircleCIError as err:
            self._failed(slug, err)
        else:
            self.store.replace_project(insights)
            self.state.record_success(slug, COLLECTOR, self.clock())
        finally:
            self.telemetry.observe_cycle(COLLECTOR, anyio.current_time() - started)

    async def collect_org(self, org: str) -> None:
        """The org's summary; its health is recorded under the org slug in the `project` label,
        the only place an org-level collection can report."""
        try:
            insights = await read_org(self.client, org, self.settings.collect.insights_window)
        except CircleCIError as err:
            self._failed(org, err)
        else:
            self.store.replace_org(insights)
            self.state.record_success(org, COLLECTOR, self.clock())

    def _failed(self, key: str, err: CircleCIError) -> None:
        self.state.record_failure(key, COLLECTOR, str(err))
        logger.warning("insights collection failed", extra={"project": key, "error": str(err)})
