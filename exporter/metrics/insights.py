"""Metric families of the Insights picture (workflows, jobs, tests, orgs) from a snapshot.

Every value is a gauge the Insights collector replaced on its last successful sweep; a value the
API left out (e.g. MTTR without failures, credits) has no sample rather than a 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from exporter.metrics.builder import BuiltFamily, FamilyBuilder
from exporter.state.insights import InsightsSnapshot, RunStats, UsageStats

# Each family is named `circleci_insights_<level>_<field>` after the state field it shows.
_RUN_FIELDS = (
    "runs", "successful_runs", "failed_runs", "success_rate", "throughput_per_day", "credits_used"
)  # fmt: skip
_ORG_FIELDS = (
    "runs",
    "success_rate",
    "throughput_per_day",
    "credits_used",
    "runtime_seconds",
)
_PROJECT_FIELDS = ("runs", "success_rate", "credits_used", "runtime_seconds")


class _RunFamilies:
    """The run-count families shared by workflows and jobs (`circleci_insights_<level>_*`)."""

    def __init__(self, level: str) -> None:
        prefix = f"circleci_insights_{level}"
        self._gauges = [(FamilyBuilder(f"{prefix}_{field}"), field) for field in _RUN_FIELDS]
        self._durations = FamilyBuilder(f"{prefix}_duration_seconds")

    def add(self, labels: tuple[str, ...], stats: RunStats) -> None:
        for family, field in self._gauges:
            value = getattr(stats, field)
            if value is not None:
                family.add(labels, float(value))
        for stat, seconds in stats.durations.items():
            self._durations.add((*labels, stat), seconds)

    def build(self) -> Iterator[BuiltFamily]:
        for family, _ in self._gauges:
            yield family.build()
        yield self._durations.build()


def _usage(
    families: Mapping[str, FamilyBuilder], labels: tuple[str, ...], usage: UsageStats
) -> None:
    for field, family in families.items():
        value = getattr(usage, field)
        if value is not None:
            family.add(labels, float(value))


def insights_families(snapshot: InsightsSnapshot) -> Iterator[BuiltFamily]:
    yield from _workflow_families(snapshot)
    yield from _test_families(snapshot)
    yield from _org_families(snapshot)


def _workflow_families(snapshot: InsightsSnapshot) -> Iterator[BuiltFamily]:
    workflows = _RunFamilies("workflow")
    mttr = FamilyBuilder("circleci_insights_workflow_mttr_seconds")
    trend = FamilyBuilder("circleci_insights_workflow_trend")
    jobs = _RunFamilies("job")
    branches = FamilyBuilder("circleci_insights_branches")
    for project, p in snapshot.projects.items():
        for (branch, workflow), row in p.workflows.items():
            labels = (project, branch, workflow, p.window)
            workflows.add(labels, row.stats)
            if row.mttr_seconds is not None:
                mttr.add(labels, row.mttr_seconds)
        for (branch, workflow, metric), ratio in p.trends.items():
            trend.add((project, branch, workflow, metric), ratio)
        for (branch, workflow, job), stats in p.jobs.items():
            jobs.add((project, branch, workflow, job, p.window), stats)
        branches.add((project,), float(p.branches))
    yield from workflows.build()
    yield mttr.build()
    yield trend.build()
    yield from jobs.build()
    yield branches.build()


def _test_families(snapshot: InsightsSnapshot) -> Iterator[BuiltFamily]:
    flaky = FamilyBuilder("circleci_insights_flaky_tests")
    times_flaked = FamilyBuilder("circleci_insights_flaky_test_times_flaked")
    test_runs = FamilyBuilder("circleci_insights_test_runs")
    failed = FamilyBuilder("circleci_insights_test_failed_runs")
    slow = FamilyBuilder("circleci_insights_test_p95_duration_seconds")
    for project, p in snapshot.projects.items():
        flaky.add((project,), float(p.flaky_total))
        for flaky_key, count in p.flaky_tests.items():
            times_flaked.add((project, *flaky_key), count)
        for workflow_key, runs in p.test_runs.items():
            test_runs.add((project, *workflow_key), float(runs))
        for test_key, value in p.failed_tests.items():
            failed.add((project, *test_key), value)
        for test_key, value in p.slow_tests.items():
            slow.add((project, *test_key), value)
    for family in (flaky, times_flaked, test_runs, failed, slow):
        yield family.build()


def _org_families(snapshot: InsightsSnapshot) -> Iterator[BuiltFamily]:
    org_families = {f: FamilyBuilder(f"circleci_insights_org_{f}") for f in _ORG_FIELDS}
    project_families = {f: FamilyBuilder(f"circleci_insights_project_{f}") for f in _PROJECT_FIELDS}
    for org, o in snapshot.orgs.items():
        _usage(org_families, (org, o.window), o.totals)
        for project, usage in o.projects.items():
            _usage(project_families, (org, project, o.window), usage)
    for family in (*org_families.values(), *project_families.values()):
        yield family.build()
