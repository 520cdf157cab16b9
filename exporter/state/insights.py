"""The latest Insights values, per project and per org, as the Insights collector last read them.

Insights are aggregates CircleCI recomputes about daily, so nothing here accumulates: each
successful sweep of a project (or org) replaces everything known about it, and a failed sweep
leaves the previous values in place. Keys are the named tuples of `exporter.state.keys`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

from exporter.state.keys import (
    BranchJobKey,
    BranchTestKey,
    BranchWorkflowKey,
    FlakyTestKey,
    TrendKey,
)


def _freeze_mappings(obj: Any) -> None:
    """Give a frozen dataclass read-only copies of its mappings, so no caller can change them."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, Mapping):
            object.__setattr__(obj, f.name, MappingProxyType(dict(value)))


@dataclass(frozen=True, slots=True)
class RunStats:
    """Run counts of a workflow or job over the reporting window."""

    runs: int
    successful_runs: int
    failed_runs: int
    success_rate: float
    throughput_per_day: float
    credits_used: float | None
    # stat (min, mean, median, p95, max, stddev) → seconds; stats the API left out are absent
    durations: Mapping[str, float]

    def __post_init__(self) -> None:
        _freeze_mappings(self)


@dataclass(frozen=True, slots=True)
class WorkflowStats:
    stats: RunStats
    mttr_seconds: float | None  # None when there were no failures


@dataclass(frozen=True, slots=True)
class UsageStats:
    """A row of the org summary: the org's totals or one project's."""

    runs: int | None
    success_rate: float | None
    throughput_per_day: float | None
    credits_used: float | None
    runtime_seconds: float | None


@dataclass(frozen=True, slots=True)
class ProjectInsights:
    """Everything one sweep of one project found."""

    project: str
    window: str
    branches: int  # how many branches Insights knows
    workflows: Mapping[BranchWorkflowKey, WorkflowStats]
    test_runs: Mapping[BranchWorkflowKey, int]
    trends: Mapping[TrendKey, float]
    jobs: Mapping[BranchJobKey, RunStats]
    # Already capped to the top N per workflow.
    failed_tests: Mapping[BranchTestKey, float]
    slow_tests: Mapping[BranchTestKey, float]
    flaky_total: int
    # Already capped to the top N of the project.
    flaky_tests: Mapping[FlakyTestKey, float]

    def __post_init__(self) -> None:
        _freeze_mappings(self)


@dataclass(frozen=True, slots=True)
class OrgInsights:
    org: str
    window: str
    totals: UsageStats
    projects: Mapping[str, UsageStats]  # project slug → its row

    def __post_init__(self) -> None:
        _freeze_mappings(self)


@dataclass(frozen=True, slots=True)
class InsightsSnapshot:
    projects: Mapping[str, ProjectInsights]
    orgs: Mapping[str, OrgInsights]


@dataclass(frozen=True, slots=True)
class InsightsChanges:
    """The projects and orgs whose values changed since the last `take_changes`."""

    projects: frozenset[str]
    orgs: frozenset[str]

    def __bool__(self) -> bool:
        return bool(self.projects or self.orgs)


class InsightsStore:
    def __init__(self) -> None:
        self._projects: dict[str, ProjectInsights] = {}
        self._orgs: dict[str, OrgInsights] = {}
        self._changed_projects: set[str] = set()
        self._changed_orgs: set[str] = set()

    def replace_project(self, insights: ProjectInsights) -> None:
        # A sweep that read the same values changes nothing to publish.
        if self._projects.get(insights.project) != insights:
            self._projects[insights.project] = insights
            self._changed_projects.add(insights.project)

    def replace_org(self, insights: OrgInsights) -> None:
        if self._orgs.get(insights.org) != insights:
            self._orgs[insights.org] = insights
            self._changed_orgs.add(insights.org)

    def take_changes(self) -> InsightsChanges:
        """What changed since the last call (the first call: everything so far)."""
        changes = InsightsChanges(frozenset(self._changed_projects), frozenset(self._changed_orgs))
        self._changed_projects = set()
        self._changed_orgs = set()
        return changes

    def snapshot(self) -> InsightsSnapshot:
        # The values are immutable, so copying the two dicts makes the snapshot immutable too.
        return InsightsSnapshot(
            projects=MappingProxyType(dict(self._projects)),
            orgs=MappingProxyType(dict(self._orgs)),
        )
