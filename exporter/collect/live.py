"""Runs one polling loop per project, concurrently, reads each org's pipeline feed once per
interval, discovers projects of `orgs:`, and applies verified webhook events to the project
they belong to.

Each project has its own loop and schedule, so one slow or failing project never delays the
others; all of them share the client's global rate limiter. The org feeds (collect/feed.py)
have a loop of their own: it hands each tracked project the new pipelines the feed lists and
wakes its loop, and never waits for a project; a project whose feed is late or failing reads
its own list again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio
from anyio.abc import TaskGroup

from exporter.circleci import CircleCIClient, CircleCIError, slugs
from exporter.collect.discovery import discover_projects
from exporter.collect.events import UnusableEvent, WorkflowCompleted, parse_event
from exporter.collect.feed import OrgFeed
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
        # One feed per org of a tracked project (by lower-case org slug), with collect.org_feed.
        self.feeds: dict[str, OrgFeed] = {}
        self._wakes: dict[str, anyio.Event] = {}

    @property
    def ready(self) -> bool:
        """Every known project has finished its first collection."""
        return bool(self.projects) and self.first_cycle_done >= set(self.projects)

    async def run(self) -> None:
        """Poll every tracked project, and those that discovery finds, until cancelled."""
        for project in self.settings.projects:
            self.add_project(project.slug, project)
        if self.feeds:
            # Mark where each feed starts before the projects read their lists, so that their
            # first list read is their last one until project_refresh; never waited for long.
            with anyio.move_on_after(self.settings.api.timeout):
                await self.read_feeds()
        async with anyio.create_task_group() as tg:
            for collector in list(self.projects.values()):
                self._start(tg, collector)
            if self.settings.orgs:
                tg.start_soon(self._discover_forever, tg)
            if self.settings.collect.org_feed:
                tg.start_soon(self._read_feeds_forever)

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
        if self.settings.collect.org_feed:
            collector.feed = self._feed_of(slug)
            self.telemetry.set_in_org_feed(slug, collector.in_feed)
        self.projects[slug] = collector
        self._by_lower_slug[slug.lower()] = collector
        return collector

    def _feed_of(self, project_slug: str) -> OrgFeed:
        org = slugs.org_slug_of(project_slug)
        feed = self.feeds.get(org.lower())
        if feed is None:
            collect = self.settings.collect
            # Three feed intervals without a complete read: the projects read their lists.
            feed = OrgFeed(
                org, max_pages=collect.org_feed_max_pages, fresh_for=3 * collect.interval
            )
            self.feeds[org.lower()] = feed
        return feed

    def find(self, slug: str) -> ProjectCollector | None:
        """The tracked project of `slug`, compared case-insensitively like CircleCI does."""
        return self._by_lower_slug.get(slug.lower())

    def _start(self, tg: TaskGroup, collector: ProjectCollector) -> None:
        tg.start_soon(self._poll_forever, collector, name=f"collect {collector.slug}")

    async def _poll_forever(self, collector: ProjectCollector) -> None:
        while True:
            started = anyio.current_time()
            # Created before the cycle: what the feed offers during it wakes the next one.
            wake = self._wakes[collector.slug] = anyio.Event()
            await self.collect_once(collector)
            self.on_cycle()
            interval = self.interval_for(collector)
            with anyio.move_on_after(max(0.0, interval - (anyio.current_time() - started))):
                await wake.wait()

    async def _read_feeds_forever(self) -> None:
        while True:
            started = anyio.current_time()
            await self.read_feeds()
            elapsed = anyio.current_time() - started
            await anyio.sleep(max(0.0, self.settings.collect.interval - elapsed))

    async def read_feeds(self) -> None:
        """Read every org feed once, concurrently, and hand each tracked project what is new."""
        async with anyio.create_task_group() as tg:
            for feed in list(self.feeds.values()):
                tg.start_soon(self._read_feed, feed)

    async def _read_feed(self, feed: OrgFeed) -> None:
        try:
            read = await feed.read(self.client, self.clock())
        except CircleCIError as err:
            logger.warning(
                "org feed read failed; its projects read their own lists until it recovers",
                extra={"org": feed.org, "error": str(err)},
            )
            return
        if read.overflow is not None:
            self.telemetry.count_feed_overflow(feed.org, read.overflow)
            logger.warning(
                "more new pipelines than one org feed read shows; every project of the org "
                "reads its own list once",
                extra={"org": feed.org, "reason": read.overflow, "pipelines": len(read.new),
                       "setting": "collect.org_feed_max_pages"},
            )  # fmt: skip
        for pipeline in read.new:
            # Only tracked projects: with sharding, another replica's project is not found.
            collector = self.find(pipeline.project_slug)
            if collector is None or collector.feed is not feed:
                continue
            collector.offer(pipeline)
            self.telemetry.set_in_org_feed(collector.slug, collector.in_feed)
            # While webhooks arrive they report the runs; the feed only keeps the list reads
            # away, and the relaxed loop takes the pipeline in at its next cycle.
            if self.interval_for(collector) <= self.settings.collect.interval:
                wake = self._wakes.get(collector.slug)
                if wake is not None:
                    wake.set()

    def interval_for(self, collector: ProjectCollector) -> float:
        """The project's next polling interval. While its webhooks arrive (one came within
        `interval_with_webhooks`), polling only reconciles: it catches missed events and the
        running / on_hold states, which have no webhook. Once they stop, it speeds up again.
        With the org feed the feed is then the safety net: it hands over new pipelines without
        waking the loop, and the list is read only every `project_refresh`."""
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
            if collector.feed is not None:
                self.telemetry.set_in_org_feed(collector.slug, collector.in_feed)
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
