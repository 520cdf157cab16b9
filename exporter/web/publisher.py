"""Keeps the rendered exposition of the latest snapshot, so that a scrape is a memory copy.

Collectors call `request()` after a cycle; the publisher snapshots the state (on the event
loop, where the state lives) and renders it in a worker thread, at most once per
`min_gap` seconds however many projects finish their cycles.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import anyio
from prometheus_client import CollectorRegistry, Counter

from exporter.catalog import BY_NAME
from exporter.metrics import Rendered, render
from exporter.state import Snapshot, State
from exporter.state.insights import InsightsSnapshot, InsightsStore
from exporter.state.schedules import ScheduleKey, ScheduleRow, ScheduleStore

logger = logging.getLogger(__name__)


class Publisher:
    def __init__(
        self,
        state: State,
        intervals: Mapping[str, float],
        *,
        insights: InsightsStore | None = None,
        schedules: ScheduleStore | None = None,
        min_gap: float = 1.0,
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.state = state
        self.intervals = dict(intervals)
        self.insights = insights
        self.schedules = schedules
        self.min_gap = min_gap
        self.clock = clock
        self._wanted = anyio.Event()
        spec = BY_NAME["circleci_exporter_render_errors_total"]
        self._render_errors = Counter(
            spec.name.removesuffix("_total"), spec.help, registry=registry or CollectorRegistry()
        )
        self.snapshot: Snapshot = state.snapshot(clock())
        self.rendered: Rendered = render(
            self.snapshot, self.intervals, self._insights(), self._schedules()
        )

    def request(self) -> None:
        self._wanted.set()

    async def publish_now(self) -> None:
        snapshot = self.state.snapshot(self.clock())
        try:
            self.rendered = await anyio.to_thread.run_sync(
                render, snapshot, self.intervals, self._insights(), self._schedules()
            )
        except Exception as err:
            self._render_errors.inc()
            logger.error(
                "rendering the metrics failed; serving the last good ones",
                extra={"error": f"{type(err).__name__}: {err!r}"},
            )
            return
        self.snapshot = snapshot

    def _insights(self) -> InsightsSnapshot | None:
        return None if self.insights is None else self.insights.snapshot()

    def _schedules(self) -> Mapping[ScheduleKey, ScheduleRow] | None:
        return None if self.schedules is None else self.schedules.snapshot()

    async def run(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted = anyio.Event()
            await self.publish_now()
            await anyio.sleep(self.min_gap)
