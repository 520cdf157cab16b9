"""What a backfill reads: each tracked project, branch and workflow, with its job names.

The plan comes from the Insights summaries (a few requests per project), which also give the
run counts that `--dry-run` turns into a request estimate. Tracked branches are the ones the
live exporter would label by name: the literal `branches:` and, for glob patterns, the
branches Insights knows that match. Folded (`other`) branches and tags are not backfilled: the
run lists can only be read one branch at a time.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from exporter.circleci import CircleCIClient, models
from exporter.collect.branches import BranchPolicy
from exporter.collect.discovery import discover_projects
from exporter.settings import BranchRules, EffectiveBranchRules, Settings

_GLOB = frozenset("*?[")
# The server fixes the page size, 20 for pipelines (docs/circleci-api.md §Pagination); the run
# lists are taken to page alike, so the dry run's count is an estimate.
PAGE_SIZE = 20
_WINDOWS: tuple[tuple[float, models.ReportingWindow], ...] = (
    (1, "last-24-hours"),
    (7, "last-7-days"),
    (30, "last-30-days"),
    (60, "last-60-days"),
    (90, "last-90-days"),
)


def reporting_window(days: float) -> models.ReportingWindow:
    """The smallest Insights reporting window that covers the last `days` days."""
    return next((name for limit, name in _WINDOWS if days <= limit), "last-90-days")


def pages(runs: int) -> int:
    """Requests to list `runs` runs: an empty list still costs one."""
    return max(1, math.ceil(runs / PAGE_SIZE))


@dataclass(frozen=True, slots=True)
class JobPlan:
    name: str
    runs: int  # in the reporting window: an estimate of the runs to read


@dataclass(frozen=True, slots=True)
class WorkflowTarget:
    """One (project, branch, workflow) series group to rebuild."""

    project: str
    branch: str
    workflow: str
    runs: int
    jobs: tuple[JobPlan, ...]

    @property
    def key(self) -> str:
        """Its name in the checkpoint (workflow names may hold spaces)."""
        return json.dumps([self.project, self.branch, self.workflow])

    def __str__(self) -> str:
        return f"{self.project} {self.branch} {self.workflow}"

    @property
    def requests(self) -> int:
        """The estimated requests to read its runs and its jobs' runs."""
        return pages(self.runs) + sum(pages(job.runs) for job in self.jobs)


@dataclass(frozen=True, slots=True)
class Plan:
    targets: tuple[WorkflowTarget, ...]
    discovery_requests: int

    @property
    def requests(self) -> int:
        return self.discovery_requests + sum(t.requests for t in self.targets)


async def make_plan(
    client: CircleCIClient, settings: Settings, days: float
) -> list[WorkflowTarget]:
    """Read the summaries of every tracked project: its branches, workflows and jobs. The
    projects of `orgs:` are discovered as the live exporter discovers them."""
    window = reporting_window(days)
    projects: dict[str, BranchRules] = {p.slug: p for p in settings.projects}
    for org in settings.orgs:
        found = await discover_projects(
            client, org, insights_window=settings.collect.insights_window
        )
        for slug in sorted(found):
            projects.setdefault(slug, org)
    targets: list[WorkflowTarget] = []
    for slug, rules in projects.items():
        targets += await _project_targets(client, slug, settings.branch_rules(rules), window)
    return targets


async def _project_targets(
    client: CircleCIClient, slug: str, rules: EffectiveBranchRules, window: models.ReportingWindow
) -> list[WorkflowTarget]:
    info = await client.get_project(slug)
    policy = BranchPolicy(rules, info.vcs_info.default_branch)
    branches = policy.literal_branches()
    if any(_GLOB & set(pattern) for pattern in rules.branches):
        # Glob patterns: match them against the branches Insights knows.
        known = await client.get_insights_branches(slug)
        for branch in known.branches:
            place = policy.place(branch, None)
            if place is not None and not place.folded and branch not in branches:
                branches.append(branch)
    targets = []
    for branch in branches:
        async for workflow in client.iter_workflow_metrics(
            slug, branch=branch, reporting_window=window
        ):
            jobs = [
                JobPlan(job.name, job.metrics.total_runs)
                async for job in client.iter_workflow_job_metrics(
                    slug, workflow.name, branch=branch, reporting_window=window
                )
            ]
            runs = workflow.metrics.total_runs
            targets.append(WorkflowTarget(slug, branch, workflow.name, runs, tuple(jobs)))
    return targets
