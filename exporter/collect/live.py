"""Runs one polling loop per project, concurrently, and discovers projects of `orgs:`.

Each project has its own loop and schedule, so one slow or failing project never delays the
others; all of them share the client's global rate limiter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio
from anyio.abc import TaskGroup

from exporter.circleci import CircleCIClient, CircleCIError, slugs
from exporter.collect.project import ProjectCollector
from exporter.collect.telemetry import CollectTelemetry
from exporter.settings import BranchRules, OrgSettings, Settings
from exporter.state import State

logger = logging.getLogger(__name__)

COLLECTOR = "live"
# The org feed lists pipelines of the org's most recently built projects, newest first:
# five pages (100 pipelines) find every project that built lately without paging for long.
_DISCOVERY_PAGES = 5


class LiveCollector:
    def __init__(
        self,
        settings: Settings,
        *,
        client: CircleCIClient,
        state: State,
        on_cycle: Callable[[], None],
        telemetry: CollectTelemetry,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.client = client
        self.state = state
        self.on_cycle = on_cycle
        self.telemetry = telemetry
        self.clock = clock
        self.projects: dict[str, ProjectCollector] = {}
        self.first_cycle_done: set[str] = set()

    @property
    def ready(self) -> bool:
        """Every known project has finished its first collection."""
        return bool(self.projects) and self.first_cycle_done >= set(self.projects)

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            for project in self.settings.projects:
                self._start(tg, project.slug, project)
            if self.settings.orgs:
                tg.start_soon(self._discover_forever, tg)

    def add_project(self, slug: str, rules: BranchRules) -> ProjectCollector | None:
        """Track a project; None when it is tracked already."""
        if slug in self.projects:
            return None
        collector = ProjectCollector(
            slug,
            self.settings.branch_rules(rules),
            client=self.client,
            state=self.state,
            settings=self.settings.collect,
            clock=self.clock,
        )
        self.projects[slug] = collector
        return collector

    def _start(self, tg: TaskGroup, slug: str, rules: BranchRules) -> None:
        collector = self.add_project(slug, rules)
        if collector is not None:
            tg.start_soon(self._poll_forever, collector, name=f"collect {slug}")

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
                    found = await self.discover(org)
                except CircleCIError as err:
                    logger.warning("discovery failed", extra={"org": org.slug, "error": str(err)})
                    continue
                for slug in sorted(found):
                    self._start(tg, slug, org)
            await anyio.sleep(self.settings.collect.discovery_interval)

    async def discover(self, org: OrgSettings) -> set[str]:
        """Projects of the org that built lately, or that Insights knows, matching its globs."""
        found: set[str] = set()
        seen = 0
        async for pipeline in self.client.iter_org_pipelines(org.slug):
            found.add(slugs.normalize_project_slug(pipeline.project_slug))
            seen += 1
            if seen >= 20 * _DISCOVERY_PAGES:
                break
        # Insights names projects, not slugs; names map to slugs only for OAuth orgs
        # (standalone project slugs hold opaque ids).
        if not org.slug.startswith("circleci/"):
            summary = await self.client.get_org_summary(
                org.slug, reporting_window=self.settings.collect.insights_window
            )
            found.update(f"{org.slug}/{name}" for name in summary.all_projects)
        return {slug for slug in found if org.admits(slug)}
