"""Runs one polling loop per project, concurrently, discovers projects of `orgs:`, and
applies verified webhook events to the project they belong to.

Each project has its own loop and schedule, so one slow or failing project never delays the
others; all of them share the client's global rate limiter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio
from anyio.abc import TaskGroup

from exporter.circleci import CircleCIClient, CircleCIError
from exporter.collect.discovery import discover_projects
from exporter.collect.events import UnusableEvent, WorkflowCompleted, parse_event
from exporter.collect.project import ProjectCollector
from exporter.collect.schedules import ScheduleBook
from exporter.collect.telemetry import CollectTelemetry
from exporter.settings import BranchRules, Settings
from exporter.sharding import UNSHARDED, Shard
from exporter.state import State
from exporter.state.updates import JobUpdate
from exporter.webhook_outcome import EventOutcome

logger = logging.getLogger(__name__)

COLLECTOR = "live"


class LiveCollector:
    def __init__(
        self,
        settings: Settings,
        *,
        client: CircleCIClient,
        state: State,
        on_cycle: Callable[[], None],
        telemetry: CollectTelemetry,
        schedules: ScheduleBook | None = None,
        clock: Callable[[], float] = time.time,
        shard: Shard = UNSHARDED,
    ) -> None:
        self.settings = settings
        self.shard = shard
        self.schedules = schedules
        self.client = client
        self.state = state
        self.on_cycle = on_cycle
        self.telemetry = telemetry
        self.clock = clock
        self.projects: dict[str, ProjectCollector] = {}
        self._by_lower_slug: dict[str, ProjectCollector] = {}
        self.first_cycle_done: set[str] = set()

    @property
    def ready(self) -> bool:
        """Every known project has finished its first collection."""
        return bool(self.projects) and self.first_cycle_done >= set(self.projects)

    async def run(self) -> None:
        """Poll every tracked project, and those that discovery finds, until cancelled."""
        for project in self.settings.projects:
            self.add_project(project.slug, project)
        async with anyio.create_task_group() as tg:
            for collector in list(self.projects.values()):
                self._start(tg, collector)
            if self.settings.orgs:
                tg.start_soon(self._discover_forever, tg)

    def add_project(self, slug: str, rules: BranchRules) -> ProjectCollector | None:
        """Track a project; None when it is tracked already (slugs compare case-insensitively,
        as CircleCI's do: an org feed may spell a configured project with other capitals) or
        when another shard owns it. Every source of projects (`projects:`, `orgs:` discovery,
        the org feed) comes through here, so this is where a shard keeps to its own."""
        if not self.shard.owns(slug) or self.find(slug) is not None:
            return None
        collector = ProjectCollector(
            slug,
            self.settings.branch_rules(rules),
            client=self.client,
            state=self.state,
            settings=self.settings.collect,
            schedules=None if self.schedules is None else self.schedules.project(slug),
            clock=self.clock,
            on_forgotten=self.telemetry.count_forgotten,
        )
        self.projects[slug] = collector
        self._by_lower_slug[slug.lower()] = collector
        return collector

    def find(self, slug: str) -> ProjectCollector | None:
        """The tracked project of `slug`, compared case-insensitively like CircleCI does."""
        return self._by_lower_slug.get(slug.lower())

    def _start(self, tg: TaskGroup, collector: ProjectCollector) -> None:
        tg.start_soon(self._poll_forever, collector, name=f"collect {collector.slug}")

    async def _poll_forever(self, collector: ProjectCollector) -> None:
        while True:
            started = anyio.current_time()
            await self.collect_once(collector)
            self.on_cycle()
            interval = self.interval_for(collector)
            await anyio.sleep(max(0.0, interval - (anyio.current_time() - started)))

    def interval_for(self, collector: ProjectCollector) -> float:
        """The project's next polling interval. While its webhooks arrive (one came within
        `interval_with_webhooks`), polling only reconciles: it catches missed events and the
        running / on_hold states, which have no webhook. Once they stop, it speeds up again."""
        relaxed = self.settings.collect.interval_with_webhooks
        normal = self.settings.collect.interval
        last = collector.last_webhook_at
        if last is not None and self.clock() - last < relaxed:
            return max(normal, relaxed)
        return normal

    async def collect_once(self, collector: ProjectCollector) -> None:
        """One cycle of one project; a failure marks the project down and keeps its data."""
        started = anyio.current_time()
        try:
            await collector.cycle()
        except CircleCIError as err:
            self.state.record_failure(collector.slug, COLLECTOR, str(err))
            logger.warning(
                "collection failed", extra={"project": collector.slug, "error": str(err)}
            )
        else:
            self.state.record_success(collector.slug, COLLECTOR, self.clock())
        finally:
            self.first_cycle_done.add(collector.slug)
            self.telemetry.observe_cycle(COLLECTOR, anyio.current_time() - started)

    async def _discover_forever(self, tg: TaskGroup) -> None:
        while True:
            for org in self.settings.orgs:
                try:
                    found = await discover_projects(
                        self.client, org, insights_window=self.settings.collect.insights_window
                    )
                except CircleCIError as err:
                    logger.warning("discovery failed", extra={"org": org.slug, "error": str(err)})
                    continue
                for slug in sorted(found):
                    collector = self.add_project(slug, org)
                    if collector is not None:
                        self._start(tg, collector)
            await anyio.sleep(self.settings.collect.discovery_interval)

    def apply_event(self, data: dict[str, object]) -> EventOutcome:
        """Apply a verified, decoded webhook event like polling would, and say what became of
        it: applied, ignored (untracked project or branch, or an event polling must count) or
        other_shard (another shard owns the project; nothing applied). Raises MalformedEvent (a
        ValueError) when the payload is not shaped like an event."""
        try:
            parsed = parse_event(data)
        except UnusableEvent as err:
            logger.debug("ignored webhook event", extra={"reason": str(err)})
            return EventOutcome.IGNORED
        if not self.shard.owns(parsed.project):
            return EventOutcome.OTHER_SHARD
        collector = self.find(parsed.project)
        # Until the project is read, its policy does not know the default branch; polling
        # will see the run, so nothing is lost by ignoring the event.
        if collector is None or not collector.policy_known:
            return EventOutcome.IGNORED
        collector.note_webhook(self.clock())
        if collector.schedules is not None and isinstance(parsed, WorkflowCompleted):
            # Reaches scheduled runs on untracked branches too, whose workflows polling skips.
            workflow = parsed.workflow
            collector.schedules.note_workflow(
                parsed.pipeline.id, workflow.id, workflow.status or ""
            )
        place = collector.policy.place(*parsed.ref())
        if place is None:
            return EventOutcome.IGNORED
        # Under the tracked project's own spelling, whatever capitals the event used.
        update = parsed.update(place, collector.slug)
        self.state.apply(update)
        # Runs from before start-up follow polling's history rules: only watched ones queue.
        if (
            isinstance(update, JobUpdate)
            and (update.stopped_at or update.created_at) >= self.state.watch_start
        ):
            collector.queue_job_details(update)
        return EventOutcome.APPLIED
