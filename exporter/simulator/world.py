"""The simulated organisation as a pure function of time, plus the ground truth tests read."""

from __future__ import annotations

import bisect
import heapq
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from exporter.simulator.catalog import build_organizations, build_project, build_users
from exporter.simulator.clock import SimClock
from exporter.simulator.config import SimConfig
from exporter.simulator.model import (
    Actor,
    Job,
    Organization,
    Pipeline,
    Project,
    Schedule,
    Workflow,
)
from exporter.simulator.timeline import ProjectTimeline

RETENTION = timedelta(days=90)  # 90 days of runs (circleci-api.md §Insights freshness)
_LONG_VCS = {"github": "gh", "bitbucket": "bb"}


def normalize_slug(slug: str) -> str:
    """`github/o/r` → `gh/o/r`, `bitbucket/o/r` → `bb/o/r` (docs/circleci-api.md §Slugs);
    others unchanged."""
    vcs, sep, rest = slug.strip("/").partition("/")
    return f"{_LONG_VCS.get(vcs, vcs)}{sep}{rest}"


class World:
    """A deterministic fake CircleCI organisation whose history grows with `clock`.

    Pipelines are generated lazily, in time order, up to the clock's now; everything about a run
    (timings, outcome, tests) is planned when its pipeline is created, and its visible status at
    any moment is read off that plan.
    """

    def __init__(self, config: SimConfig | None = None, clock: SimClock | None = None) -> None:
        self.config = config or SimConfig()
        self.clock = clock or SimClock()
        self.retention = RETENTION / self.config.speed
        start = self.clock.now()
        origin = (
            start - timedelta(seconds=self.config.history_seconds / self.config.speed)
        ).replace(microsecond=0)
        self.origin = max(origin, start - self.retention)
        self.organizations: tuple[Organization, ...] = build_organizations(self.config.seed)
        self.users: tuple[Actor, ...] = build_users(self.config.seed)
        self.me = self.users[0]
        self.projects: list[Project] = [
            build_project(self.config.seed, i, self.organizations, self.origin)
            for i in range(self.config.projects)
        ]
        self.followed: list[Project] = self._followed_projects()
        active = {p.slug for p in self._named_projects(self.config.active, "active")}
        # Everyone a run can name (started_by, approved_by, canceled_by): people and the
        # schedules' actors.
        self._users_by_id = {user.id: user for user in self.users} | {
            s.actor_id: Actor(s.actor_id, s.actor_login) for p in self.projects for s in p.schedules
        }
        self._timelines = {
            project.slug: ProjectTimeline(
                project,
                seed=self.config.seed,
                speed=self.config.speed,
                origin=self.origin,
                users=self.users,
                start=start,
                stop_after=self.config.schedule_stop_after,
                quiet=project.slug not in active,
            )
            for project in self.projects
        }
        self._pipelines_by_id: dict[str, Pipeline] = {}
        self._workflows_by_id: dict[str, Workflow] = {}
        self._lock = threading.RLock()
        self._next_due = float("-inf")
        self._pruned_until = self.origin
        self.sync()

    # -- time -----------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def sync(self) -> datetime:
        """Generate every pipeline created up to now and drop those past retention; returns now."""
        now = self.clock.now()
        if now.timestamp() < self._next_due:
            return now
        with self._lock:
            for timeline in self._timelines.values():
                for pipeline in timeline.generate_until(now):
                    self._pipelines_by_id[pipeline.id] = pipeline
                    for workflow in pipeline.workflows:
                        self._workflows_by_id[workflow.id] = workflow
            self._next_due = min(t.next_arrival for t in self._timelines.values())
            self._prune(now)
        return now

    def _prune(self, now: datetime) -> None:
        cutoff = now - self.retention
        # Pruning walks every project, so do it at most once per 1/1000 of the retention.
        if cutoff - self._pruned_until < self.retention / 1000:
            return
        self._pruned_until = cutoff
        for timeline in self._timelines.values():
            for pipeline in timeline.prune_before(cutoff):
                self._pipelines_by_id.pop(pipeline.id, None)
                for workflow in pipeline.workflows:
                    self._workflows_by_id.pop(workflow.id, None)

    # -- ground truth ---------------------------------------------------------------------------

    def find_project(self, slug: str) -> Project | None:
        timeline = self._timelines.get(normalize_slug(slug))
        return timeline.project if timeline else None

    def project(self, slug: str) -> Project:
        project = self.find_project(slug)
        if project is None:
            raise KeyError(f"no simulated project {slug!r}")
        return project

    def _followed_projects(self) -> list[Project]:
        return self._named_projects(self.config.followed, "followed")

    def _named_projects(self, slugs: tuple[str, ...] | None, setting: str) -> list[Project]:
        """The projects a setting names (None: every project); an unknown slug fails."""
        if slugs is None:
            return list(self.projects)
        wanted = {normalize_slug(s) for s in slugs}
        unknown = sorted(wanted - {p.slug for p in self.projects})
        if unknown:
            raise ValueError(f"{setting}: no simulated project {', '.join(unknown)}")
        return [p for p in self.projects if p.slug in wanted]

    def user(self, user_id: str) -> Actor | None:
        return self._users_by_id.get(user_id)

    def projects_of(self, org_slug: str) -> list[Project]:
        org_slug = normalize_slug(org_slug)
        return [p for p in self.projects if p.organization.slug == org_slug]

    def organization(self, org_slug: str) -> Organization | None:
        org_slug = normalize_slug(org_slug)
        return next((org for org in self.organizations if org.slug == org_slug), None)

    def pipelines(self, project_slug: str, branch: str | None = None) -> list[Pipeline]:
        """Pipelines created so far (within retention), oldest first; optionally one branch."""
        self.sync()
        timeline = self._timeline(project_slug)
        if branch is None:
            return list(timeline.pipelines)
        return list(timeline.by_branch.get(branch, ()))

    def workflows(
        self, project_slug: str, branch: str | None = None, name: str | None = None
    ) -> list[Workflow]:
        """Workflows visible now (reruns appear when created), ordered by created_at."""
        now = self.sync()
        found = [
            workflow
            for pipeline in self.pipelines(project_slug, branch)
            for workflow in pipeline.workflows_at(now)
            if name is None or workflow.name == name
        ]
        found.sort(key=lambda w: w.created_at)
        return found

    def pipeline(self, pipeline_id: str) -> Pipeline | None:
        self.sync()
        return self._pipelines_by_id.get(pipeline_id)

    def workflow(self, workflow_id: str) -> Workflow | None:
        now = self.sync()
        workflow = self._workflows_by_id.get(workflow_id)
        return workflow if workflow is not None and workflow.is_visible_at(now) else None

    def job(self, project_slug: str, number: int) -> Job | None:
        """The job with this number, once CircleCI would have numbered it (queued)."""
        now = self.sync()
        job = self._timeline(project_slug).jobs_by_number.get(number)
        return job if job is not None and job.number_at(now) is not None else None

    def completed_between(self, start: datetime, end: datetime) -> list[Workflow | Job]:
        """Workflows and build jobs whose planned stop is in (start, end], in stop order."""
        self.sync()
        found: list[tuple[datetime, str, Workflow | Job]] = []
        for timeline in self._timelines.values():
            earliest = start - timedelta(seconds=timeline.max_span_seconds)
            first = bisect.bisect_left(timeline.pipelines, earliest, key=lambda p: p.created_at)
            for pipeline in timeline.pipelines[first:]:
                for workflow in pipeline.workflows:
                    if start < workflow.stopped_at <= end:
                        found.append((workflow.stopped_at, f"2{workflow.id}", workflow))
                    for job in workflow.jobs:
                        if job.ran and start < job.stopped_at <= end:
                            found.append((job.stopped_at, f"1{job.id}", job))
        found.sort(key=lambda item: (item[0], item[1]))
        return [item[2] for item in found]

    def most_recently_built(self, projects: list[Project], limit: int) -> list[Project]:
        """The `limit` projects of `projects` whose newest pipeline is newest (those that never
        built last), in their original order."""
        self.sync()

        def newest(project: Project) -> datetime:
            pipelines = self._timelines[project.slug].pipelines
            return pipelines[-1].created_at if pipelines else datetime.min.replace(tzinfo=UTC)

        if len(projects) <= limit:
            return projects
        kept = {p.slug for p in sorted(projects, key=newest, reverse=True)[:limit]}
        return [p for p in projects if p.slug in kept]

    def iter_org_pipelines(self, projects: list[Project]) -> Iterator[Pipeline]:
        """Pipelines of several projects, newest first (the `/pipeline` org feed)."""
        self.sync()
        streams = [reversed(self._timelines[p.slug].pipelines) for p in projects]
        return heapq.merge(*streams, key=_feed_key, reverse=True)

    def schedule(self, schedule_id: str) -> tuple[Project, Schedule] | None:
        """The schedule with this id, and its project."""
        for project in self.projects:
            for schedule in project.schedules:
                if schedule.id == schedule_id:
                    return project, schedule
        return None

    def timeline(self, project_slug: str) -> ProjectTimeline:
        self.sync()
        return self._timeline(project_slug)

    # -- scenarios ------------------------------------------------------------------------------

    def break_default_branch(self, project_slug: str, workflow: str | None = None) -> None:
        """Default-branch runs created from now on fail (`workflow`, or every workflow)."""
        self.sync()
        with self._lock:
            self._timeline(project_slug).force_break(workflow)

    def repair_default_branch(self, project_slug: str) -> None:
        self.sync()
        with self._lock:
            self._timeline(project_slug).repair()

    def rerun(self, pipeline_id: str) -> Workflow:
        """Rerun the last workflow of a pipeline now (no new pipeline; its updated_at moves)."""
        now = self.sync()
        with self._lock:
            pipeline = self._pipelines_by_id[pipeline_id]
            workflow = self._timeline(pipeline.project.slug).rerun(pipeline, now)
            self._workflows_by_id[workflow.id] = workflow
        return workflow

    def _timeline(self, project_slug: str) -> ProjectTimeline:
        timeline = self._timelines.get(normalize_slug(project_slug))
        if timeline is None:
            raise KeyError(f"no simulated project {project_slug!r}")
        return timeline

    def __repr__(self) -> str:
        return f"World({self.config!r}, clock={self.clock!r})"


def _feed_key(pipeline: Pipeline) -> tuple[datetime, int, int]:
    return (pipeline.created_at, pipeline.project.index, pipeline.number)
