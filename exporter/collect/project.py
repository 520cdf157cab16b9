"""Incremental polling of one project: pipelines → workflows → jobs → details and tests.

The API budget is what this module economises (issue "Live collector"):
- the pipeline list is read from the newest and paging stops at the first known pipeline;
- with the org feed (`collect.org_feed`, collect/feed.py) the list is read only every
  `collect.project_refresh`: the feed hands over the new pipelines (`offer`), and a project
  with none and nothing unsettled costs no request at all;
- a known pipeline is re-read (by id) only while it is unsettled;
- a workflow's jobs are re-read only while the workflow is new or unfinished;
- job details and test results are fetched once per completed job, and never again, whether
  polling found the job or a `job-completed` webhook queued it (`queue_job_details`).
Without the feed, a quiet project costs one request per cycle: the first page of its list.
What the first cycles read of runs from before start-up is `exporter.collect.history`'s call.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

import anyio

from exporter.circleci import (
    CircleCIClient,
    CircleCIError,
    NotFoundError,
    Priority,
    models,
    requests_at,
)
from exporter.collect import translate
from exporter.collect.branches import BranchPolicy, Placement
from exporter.collect.failed_steps import FailedStepReader
from exporter.collect.feed import OrgFeed, ticket
from exporter.collect.history import StartupHistory
from exporter.collect.schedules import ProjectSchedules
from exporter.settings import CollectSettings, EffectiveBranchRules
from exporter.sharding import slug_hash
from exporter.state import State
from exporter.state.statuses import JOB_FAILURES, job_finished, workflow_finished
from exporter.state.updates import JobDetailsUpdate, JobUpdate

logger = logging.getLogger(__name__)

# A pipeline that still has no workflow this long after creation will not get one (e.g. every
# workflow was filtered out): stop re-reading it.
_NO_WORKFLOW_GRACE = 3600.0
# Pipelines the org feed may hand a project between two of its cycles before they are dropped
# in favour of one list read (a project whose cycles keep failing must not hoard them).
_MAX_OFFERS = 200


@dataclass(slots=True)
class _Reading:
    """What reading an unsettled pipeline needs; dropped when it settles."""

    last_status: dict[str, str] = field(default_factory=dict)  # of unfinished workflows
    finished_jobs: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Tracked:
    """A pipeline seen, kept for `series_ttl` (7 days by default) so that paging stops at it.

    Only what the collector reads again is kept: a pydantic `models.Pipeline` is about 3.7 KB,
    this about a tenth of it (bench/memory.py). `place` is None for one on a dropped branch
    (known, never read); `reading` is None once settled."""

    id: str
    created_at: float
    updated_at: float | None
    errored: bool  # a config error: no workflows will come
    place: Placement | None
    settled: bool = False
    gone: bool = False  # CircleCI answered 404 for it: deleted, or another server now
    # Kept once settled, for a rerun reopens the pipeline and lists these again. A tuple: a
    # pipeline has a handful of workflows, and an empty or small tuple is far smaller than a set.
    finished_workflows: tuple[str, ...] = ()
    reading: _Reading | None = None

    @classmethod
    def of(cls, pipeline: models.Pipeline, place: Placement | None, settled: bool) -> _Tracked:
        updated = pipeline.updated_at
        return cls(
            pipeline.id,
            pipeline.created_at.timestamp(),
            None if updated is None else updated.timestamp(),
            pipeline.state == "errored",
            place,
            settled=settled,
            reading=None if settled else _Reading(),
        )

    @property
    def progress(self) -> _Reading:
        """The reading state, created again when a settled pipeline is read anew."""
        if self.reading is None:
            self.reading = _Reading()
        return self.reading

    def finish_workflow(self, workflow_id: str) -> None:
        if workflow_id not in self.finished_workflows:
            self.finished_workflows += (workflow_id,)


class ProjectCollector:
    def __init__(
        self,
        slug: str,
        rules: EffectiveBranchRules,
        *,
        client: CircleCIClient,
        state: State,
        settings: CollectSettings,
        schedules: ProjectSchedules | None = None,
        clock: Callable[[], float] = time.time,
        on_forgotten: Callable[[str], None] = lambda kind: None,
    ) -> None:
        self.slug = slug
        self.on_forgotten = on_forgotten
        # Told of every scheduled pipeline seen and of its workflows (collect/schedules.py).
        self.schedules = schedules
        self.rules = rules
        self.client = client
        self.state = state
        self.settings = settings
        self.clock = clock
        self.policy = BranchPolicy(rules, None)
        self._project_read_at: float | None = None
        self._pipelines: dict[str, _Tracked] = {}
        self._floor = state.watch_start - settings.lookback
        self._history = StartupHistory()
        self._loaded = False
        # Jobs a webhook reported, waiting for their details and tests; and every job whose
        # details were fetched (job id → created_at), so neither path fetches them twice.
        self._queued_jobs: dict[str, JobUpdate] = {}
        self._details_fetched: dict[str, float] = {}
        self.last_webhook_at: float | None = None
        # The org feed (None: `collect.org_feed` is off) and what it handed over since the
        # last cycle (`offer`). `in_feed`: None until known, False once the project's own list
        # showed pipelines the feed should have listed (the token's user does not follow it).
        self.feed: OrgFeed | None = None
        self.in_feed: bool | None = None
        self._offered: dict[str, models.Pipeline] = {}
        # The last direct list read: its ticket (feed.ticket), its time, and the newest
        # pipeline it saw, below which a known pipeline ends the next read.
        self._listed: int | None = None
        self._listed_at: float | None = None
        self._list_top: datetime | None = None
        # Refresh reads happen once per `project_refresh` window, each project's windows
        # shifted by a stable fraction of the period: projects that started together do not all
        # read their lists in the same cycle. (The hash's high half: its low bits pick shards.)
        self._refresh_phase = (slug_hash(slug) >> 32) / 2**32 * settings.project_refresh
        self._failed_steps = FailedStepReader(
            slug,
            client=client,
            state=state,
            pause=settings.project_details_interval,
            clock=clock,
        )

    @property
    def policy_known(self) -> bool:
        """The project was read, so `policy` knows its default branch."""
        return self._project_read_at is not None

    def note_webhook(self, at: float) -> None:
        """A verified webhook for this project arrived (see LiveCollector.interval_for)."""
        self.last_webhook_at = at

    def queue_job_details(self, job: JobUpdate) -> None:
        """Fetch this completed job's queue time and tests on the next cycle (a webhook
        carries neither)."""
        if job.job_number is not None and job.job_id not in self._details_fetched:
            self._queued_jobs[job.job_id] = job

    def offer(self, pipeline: models.Pipeline) -> None:
        """A pipeline of this project the org feed listed; taken in by the next cycle. Offers
        pile up only while cycles fail; past `_MAX_OFFERS` they are dropped for a list read,
        which finds them again."""
        if len(self._offered) >= _MAX_OFFERS:
            self._offered.clear()
            self._listed = None
        self._offered[pipeline.id] = pipeline
        if self.in_feed is False:
            logger.info(
                "the org feed lists this project again; its list is read every project_refresh",
                extra={"project": self.slug},
            )
        self.in_feed = True

    @property
    def has_offers(self) -> bool:
        return bool(self._offered)

    def list_read_due(self, now: float) -> bool:
        """Whether this cycle reads the project's own pipeline list: always without the feed;
        with it, when the feed does not cover the project (not read yet, failing, overflowed
        since the last list read, or not listing the project at all) or a new `project_refresh`
        window began (reruns make no new pipeline, so only the list shows them)."""
        feed = self.feed
        if feed is None or self._listed is None or self._listed_at is None:
            return True
        if self.in_feed is False or self._refresh_window(now) > self._refresh_window(
            self._listed_at
        ):
            return True
        return not feed.covers(self._listed, now)

    @property
    def loading(self) -> bool:
        """No cycle has completed yet, or the start-up history is still being read: this
        project's picture is not complete, and its requests go before steady-state polls."""
        return not self._loaded

    def _refresh_window(self, at: float) -> int:
        """Which of the project's `project_refresh` windows `at` falls in: the list is read at
        least once in each, so never more than `project_refresh` apart (plus a cycle)."""
        return math.floor((at - self._refresh_phase) / self.settings.project_refresh)

    async def cycle(self) -> None:
        """One collection; raises CircleCIError when the API fails (nothing is lost: what was
        not fully read is read again next cycle)."""
        with requests_at(Priority.LOADING if self.loading else Priority.STEADY):
            await self._cycle()
        self._loaded = self._history.done

    async def _cycle(self) -> None:
        now = self.clock()
        await self._refresh_project(now)
        self._take_offers()
        if self.list_read_due(now):
            listed = ticket()
            new = await self._new_pipelines()
            self._listed, self._listed_at = listed, now
            self._check_in_feed(new)
            for pipeline in new:
                self._first_sight(pipeline)
        # Every new pipeline is known before any is read: if a read fails, the rest stay
        # unsettled and are read next cycle instead of hiding below the first known one.
        # Newest first, so that the start-up read meets each series' newest run first.
        await self._sync([t for t in self._pipelines.values() if not t.settled])
        if not self._history.done:
            await self._history.read_back(self.client, self.slug, self.policy, self._read_older)
        for job in list(self._queued_jobs.values()):
            await self._fetch_details_once(job, history=False)
        self._forget_settled(now)
        if self.schedules is not None:
            self.schedules.observed(now)

    async def _refresh_project(self, now: float) -> None:
        if (
            self._project_read_at is not None
            and now - self._project_read_at < self.settings.project_details_interval
        ):
            return
        project = await self.client.get_project(self.slug)
        update = translate.project_update(self.slug, project)
        self.state.apply(update)
        self.policy = BranchPolicy(self.rules, update.default_branch or None)
        self._project_read_at = now

    def _take_offers(self) -> None:
        """Take in what the feed listed, newest first, as a list read would have."""
        offered = sorted(self._offered.values(), key=lambda p: p.created_at, reverse=True)
        self._offered.clear()
        for pipeline in offered:
            tracked = self._pipelines.get(pipeline.id)
            if tracked is not None:
                self._reopen_if_updated(tracked, pipeline)
            elif pipeline.created_at.timestamp() >= self._floor:
                self._first_sight(pipeline)

    def _check_in_feed(self, new: list[models.Pipeline]) -> None:
        """New pipelines the list shows and the feed, read after they were created, did not:
        the token's user does not follow the project (or it fell out of the feed's 250-project
        window). Its list is then read every cycle until the feed lists it again."""
        if self.feed is None or self.in_feed is False:
            return
        if any(self.feed.should_have_listed(p.created_at) for p in new):
            self.in_feed = False
            logger.warning(
                "the org feed does not list this project (the token's user does not follow it?)"
                "; its pipeline list is read every cycle",
                extra={"project": self.slug, "org": self.feed.org},
            )

    async def _new_pipelines(self) -> list[models.Pipeline]:
        """Pipelines above the first known one. The rest of that page comes for free: a known
        pipeline whose `updated_at` moved got a new workflow (a rerun) and is read again.
        Pipelines the feed handed over since the last list read are known but may sit above
        ones it did not show: only a known pipeline at or below the last read's top ends it."""
        new: list[models.Pipeline] = []
        pages = self.client.iter_project_pipeline_pages(
            self.slug, max_pages=self.settings.pipeline_pages()
        )
        top = newest = self._list_top
        async for page in pages:
            if page and (newest is None or page[0].created_at > newest):
                newest = page[0].created_at
            reached_known = False
            for pipeline in page:
                tracked = self._pipelines.get(pipeline.id)
                if tracked is not None:
                    reached_known |= top is not None and pipeline.created_at <= top
                    self._reopen_if_updated(tracked, pipeline)
                elif not reached_known and pipeline.created_at.timestamp() >= self._floor:
                    new.append(pipeline)
                else:
                    reached_known = True
            if reached_known:
                break
        self._list_top = newest  # only once the read went through
        return new

    @staticmethod
    def _reopen_if_updated(tracked: _Tracked, seen: models.Pipeline) -> None:
        before = tracked.updated_at
        now = None if seen.updated_at is None else seen.updated_at.timestamp()
        if tracked.settled and tracked.place is not None and before and now and now > before:
            tracked.settled = False
        tracked.updated_at = now
        tracked.errored = seen.state == "errored"

    def _first_sight(self, pipeline: models.Pipeline) -> None:
        place = self.policy.place(pipeline.branch, pipeline.tag)
        self._pipelines[pipeline.id] = _Tracked.of(pipeline, place, settled=place is None)
        if self.schedules is not None:
            self.schedules.note_pipeline(pipeline, tracked=place is not None)
        if place is not None:
            self.state.apply(translate.pipeline_update(self.slug, pipeline, place))

    async def _sync(self, pipelines: list[_Tracked]) -> None:
        """Read these pipelines' workflows, then the jobs of the workflows that need it, a few
        requests at a time, and settle each pipeline once all its workflows have finished."""
        # Newest first, so that the start-up read meets each series' newest run first.
        todo = sorted(
            (t for t in pipelines if t.place is not None and not t.errored),
            key=lambda t: t.created_at,
            reverse=True,
        )
        for tracked in pipelines:
            if tracked.errored:
                tracked.settled = True  # a config error: no workflows will come
                tracked.reading = None
        workflows: dict[str, list[models.Workflow]] = {}

        async def list_workflows(tracked: _Tracked) -> None:
            pipeline_id = tracked.id
            try:
                workflows[pipeline_id] = [
                    w async for w in self.client.iter_pipeline_workflows(pipeline_id)
                ]
            except NotFoundError:
                workflows[pipeline_id] = []
                unfinished = list(tracked.progress.last_status)
                self._forget(tracked, "pipeline", pipeline_id, unfinished)

        await self._in_parallel([partial(list_workflows, t) for t in todo])
        job_reads = []
        for tracked in todo:
            for workflow in workflows[tracked.id]:
                read = self._apply_workflow(tracked, workflow)
                if read is not None:
                    job_reads.append(read)
        await self._in_parallel(job_reads)
        for tracked in todo:
            if not tracked.gone:
                self._settle(tracked, workflows[tracked.id])

    def _apply_workflow(
        self, tracked: _Tracked, workflow: models.Workflow
    ) -> Callable[[], Awaitable[None]] | None:
        """Apply the workflow; return the read of its jobs when they are worth a request."""
        place = tracked.place
        assert place is not None
        if workflow.id in tracked.finished_workflows:
            return None
        last_status = tracked.progress.last_status
        if workflow.status == "on_hold" == last_status.get(workflow.id):
            return None  # still waiting for an approval: none of its jobs can have moved
        last_status[workflow.id] = workflow.status
        if self.schedules is not None:
            self.schedules.note_workflow(tracked.id, workflow.id, workflow.status)
        update = translate.workflow_update(self.slug, workflow, place)
        self.state.apply(update)
        complete = workflow_finished(update.status, update.stopped_at)
        history = complete and (update.stopped_at or update.created_at) < self.state.watch_start
        if history and not self._history.wants_jobs(place, workflow.name, update.status):
            tracked.finish_workflow(workflow.id)
            return None
        return partial(self._sync_jobs, tracked, place, workflow, complete, history)

    async def _sync_jobs(
        self,
        tracked: _Tracked,
        place: Placement,
        workflow: models.Workflow,
        complete: bool,
        history: bool,
    ) -> None:
        try:
            await self._read_jobs(tracked, place, workflow, history)
        except NotFoundError:
            self._forget(tracked, "workflow", workflow.id, [workflow.id])
            tracked.finish_workflow(workflow.id)
            return
        if complete:
            tracked.finish_workflow(workflow.id)

    async def _read_jobs(
        self, tracked: _Tracked, place: Placement, workflow: models.Workflow, history: bool
    ) -> None:
        finished_jobs = tracked.progress.finished_jobs
        async for job in self.client.iter_workflow_jobs(workflow.id):
            # Approval jobs are not runs: they have no number, duration or tests
            # (docs/circleci-api.md §Jobs).
            if job.type == "approval" or job.id in finished_jobs:
                continue
            update = translate.job_update(self.slug, workflow, job, place)
            self.state.apply(update)
            if not job_finished(update.status, update.stopped_at):
                continue
            if update.job_number is not None:
                await self._fetch_details_once(update, history)
            finished_jobs.add(job.id)

    def _forget(
        self, tracked: _Tracked | None, kind: str, entity_id: str, unfinished: list[str]
    ) -> None:
        """CircleCI answered 404 for a tracked entity: it was deleted (or the API is another
        server now). It is settled, its unfinished runs leave the state, and the rest of the
        cycle goes on; otherwise every later cycle of the project failed on it."""
        if tracked is not None and kind == "pipeline":
            tracked.gone = tracked.settled = True
            tracked.reading = None
        self.state.forget_unfinished(unfinished)
        self.on_forgotten(kind)
        logger.warning(
            "CircleCI no longer knows a tracked entity; forgotten",
            extra={"project": self.slug, "kind": kind, "id": entity_id},
        )

    def _settle(self, tracked: _Tracked, workflows: list[models.Workflow]) -> None:
        if workflows:
            tracked.settled = all(w.id in tracked.finished_workflows for w in workflows)
        else:
            tracked.settled = self.clock() - tracked.created_at > _NO_WORKFLOW_GRACE
        if tracked.settled:
            # Finished workflow ids stay (a rerun reopens the pipeline); the rest can go.
            tracked.reading = None

    async def _in_parallel(self, reads: list[Callable[[], Awaitable[None]]]) -> None:
        """Run the reads, `max_concurrency_per_project` at a time: enough to keep the shared
        rate limit busy while a project is read from scratch, few enough that one busy or
        stuck project cannot hold every slot of the global limiter. The first API error stops
        the rest and is raised as itself (not in an exception group): the cycle has failed,
        and what was not read is read next cycle."""
        if len(reads) <= 1:
            for read in reads:
                await read()
            return
        slots = anyio.CapacityLimiter(self.settings.max_concurrency_per_project)
        failures: list[CircleCIError] = []

        async def run(read: Callable[[], Awaitable[None]]) -> None:
            async with slots:
                try:
                    await read()
                except CircleCIError as err:
                    failures.append(err)
                    tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            for read in reads:
                tg.start_soon(run, read)
        if failures:
            raise failures[0]

    async def _fetch_details_once(self, job: JobUpdate, history: bool) -> None:
        if job.job_id in self._details_fetched:
            return
        try:
            if not history:
                await self._fetch_queue_time(job)
            await self._fetch_tests(job)
            if self.settings.failed_steps and job.status in JOB_FAILURES and not job.folded:
                await self._failed_steps.read(job)
        except NotFoundError:
            self._forget(None, "job", job.job_id, [])
        self._details_fetched[job.job_id] = job.created_at
        self._queued_jobs.pop(job.job_id, None)

    async def _fetch_queue_time(self, job: JobUpdate) -> None:
        if not self.settings.job_details or job.job_number is None or job.started_at is None:
            return
        details = await self.client.get_job_details(self.slug, job.job_number)
        if details.queued_at is None:
            return
        started = details.started_at.timestamp() if details.started_at else job.started_at
        self.state.apply(
            JobDetailsUpdate(
                project=job.project,
                branch=job.branch,
                workflow=job.workflow,
                job=job.job,
                job_id=job.job_id,
                queued_at=details.queued_at.timestamp(),
                started_at=started,
                folded=job.folded,
            )
        )

    async def _fetch_tests(self, job: JobUpdate) -> None:
        # Test counts only feed a gauge of tracked branches: never fetched for folded ones.
        # (From history, only the newest run of each workflow has its jobs read at all.)
        if not self.settings.tests or job.folded or job.job_number is None:
            return
        results = [r async for r in self.client.iter_job_tests(self.slug, job.job_number)]
        self.state.apply(translate.test_results_update(job, results))

    async def _read_older(self, page: list[models.Pipeline]) -> None:
        """Read the pipelines of a history page that are tracked and not known yet."""
        found = []
        for pipeline in page:
            place = self.policy.place(pipeline.branch, pipeline.tag)
            if pipeline.id not in self._pipelines and place is not None:
                found.append(_Tracked.of(pipeline, place, settled=False))
                self._pipelines[pipeline.id] = found[-1]
                if self.schedules is not None:
                    self.schedules.note_pipeline(pipeline, tracked=True)
        await self._sync(found)

    def _forget_settled(self, now: float) -> None:
        """Settled pipelines older than the TTL can no longer reach the top of the list."""
        horizon = now - self.settings.series_ttl
        self._floor = max(self._floor, horizon)
        for job_id in [j for j, t in self._details_fetched.items() if t < horizon]:
            del self._details_fetched[job_id]
        for pipeline_id in [
            pid for pid, t in self._pipelines.items() if t.settled and t.created_at < horizon
        ]:
            del self._pipelines[pipeline_id]
