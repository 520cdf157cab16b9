"""Keeps the rendered exposition of the latest snapshot, so that a scrape is a memory copy.

Collectors call `request()` after a cycle; the publisher publishes at most once per `min_gap`
seconds however many projects finish their cycles, and only what changed since the last
publish (issue 19):
- nothing changed (the state, its collection health, the Insights and schedule stores): no
  snapshot, no render; the body served stays (`circleci_exporter_publishes_total`);
- only the times of successful collections moved (quiet cycles): published at most once per
  `success_gap` (the live interval), for with hundreds of projects a quiet cycle ends every
  few milliseconds and each would re-render the collection health of all of them
  (bench/scale.py (b)); `CircleCIExporterDataStale` allows 3 intervals, so a time served up
  to one interval late never fires it (`circleci_exporter_publishes_total{outcome="deferred"}`);
- otherwise it snapshots only the projects that changed, on the event loop where the state
  lives, handing the loop back every `SNAPSHOT_SLICE` seconds; then renders only those parts
  again in a worker thread (`IncrementalRenderer`), reusing the others' cached chunks.

No rendered value depends on the time of the render but
`circleci_exporter_snapshot_timestamp_seconds`, which says when the served metrics were
rebuilt: the ages that dashboards and alerts show are computed by Prometheus from timestamps
(`time() - ..._timestamp_seconds`), so a body left as it was stays true.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import anyio
import anyio.lowlevel
from prometheus_client import CollectorRegistry, Counter

from exporter.catalog import BY_NAME
from exporter.metrics import Rendered
from exporter.metrics.incremental import Dirty, IncrementalRenderer, Picture
from exporter.state import Snapshot, State
from exporter.state.insights import InsightsStore
from exporter.state.schedules import ScheduleStore
from exporter.state.snapshot import ProjectSnapshot

logger = logging.getLogger(__name__)

# The longest the publisher holds the event loop while snapshotting changed projects before it
# lets other tasks (scrapes, webhooks) run. One project is the unit: a project larger than this
# (thousands of series) holds the loop for its own snapshot.
SNAPSHOT_SLICE = 0.002

# How long the event loop may wait for the GIL while the render thread holds it. CPython's
# default, 5 ms, is paid each time the loop wakes during a render, and a scrape of a 15 MB body
# wakes it dozens of times (bench/render.py: scrape p99 while collecting). Set while `run`
# publishes, for the whole process (CPython has no other knob).
SWITCH_INTERVAL = 0.001


@dataclass(slots=True)
class _Pending:
    """Changes taken from the stores, not yet in a successful render: a failed render leaves
    them here for the next publish."""

    live: set[str] = field(default_factory=set)
    insights_projects: set[str] = field(default_factory=set)
    insights_orgs: set[str] = field(default_factory=set)
    schedules: set[str] = field(default_factory=set)
    health: bool = False  # the collection health (circleci_up and the like)
    success_times: bool = False  # only the times of successful collections moved

    def __bool__(self) -> bool:
        return self.success_times or self.more_than_success_times()

    def more_than_success_times(self) -> bool:
        return (
            bool(self.live or self.insights_projects or self.insights_orgs or self.schedules)
            or self.health
        )

    def dirty(self) -> Dirty:
        return Dirty(
            frozenset(self.live),
            frozenset(self.insights_projects),
            frozenset(self.insights_orgs),
            frozenset(self.schedules),
        )


def _counter(name: str, registry: CollectorRegistry) -> Counter:
    spec = BY_NAME[name]
    return Counter(spec.name.removesuffix("_total"), spec.help, spec.labels, registry=registry)


class Publisher:
    def __init__(
        self,
        state: State,
        intervals: Mapping[str, float],
        *,
        insights: InsightsStore | None = None,
        schedules: ScheduleStore | None = None,
        min_gap: float = 1.0,
        success_gap: float = 0.0,
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.state = state
        self.intervals = dict(intervals)
        self.insights = insights
        self.schedules = schedules
        self.min_gap = min_gap
        self.success_gap = success_gap
        self.clock = clock
        self._wanted = anyio.Event()
        self._lock = anyio.Lock()
        registry = registry or CollectorRegistry()
        self._render_errors = Counter(
            "circleci_exporter_render_errors",
            BY_NAME["circleci_exporter_render_errors_total"].help,
            registry=registry,
        )
        self._publishes = _counter("circleci_exporter_publishes_total", registry)
        self._parts_rendered = _counter("circleci_exporter_render_parts_total", registry)
        self._renderer = IncrementalRenderer(self.intervals)
        self._pending = _Pending()
        self._parts: dict[str, ProjectSnapshot] = {}
        self._take_changes()
        for project in self.state.projects():
            self._parts[project] = self.state.snapshot_project(project)
        picture = self._picture(self.clock())
        self.rendered: Rendered = self._renderer.render(picture, None)
        self._pending = _Pending()
        self.snapshot: Snapshot = picture.snapshot
        self._rendered_at = picture.snapshot.taken_at

    def request(self) -> None:
        self._wanted.set()

    def _take_changes(self) -> None:
        """Moves what changed in the stores since the last call to the pending changes."""
        live = self.state.take_changes()
        self._pending.live |= live.projects
        self._pending.health |= live.health
        self._pending.success_times |= live.success_times
        if self.insights is not None:
            insights = self.insights.take_changes()
            self._pending.insights_projects |= insights.projects
            self._pending.insights_orgs |= insights.orgs
        if self.schedules is not None:
            self._pending.schedules |= self.schedules.take_changes()

    async def publish_now(self) -> None:
        async with self._lock:
            self._take_changes()
            if not self._pending:
                self._publishes.labels("unchanged").inc()
                return
            if self._deferred_for() > 0:
                self._publishes.labels("deferred").inc()
                return
            await self._snapshot_changed()
            picture = self._picture(self.clock())
            try:
                self.rendered = await anyio.to_thread.run_sync(
                    self._renderer.render, picture, self._pending.dirty()
                )
            except Exception as err:
                self._render_errors.inc()
                logger.error(
                    "rendering the metrics failed; serving the last good ones",
                    extra={"error": f"{type(err).__name__}: {err!r}"},
                )
                return  # the changes stay pending, for the next publish
            self._publishes.labels("rendered").inc()
            self._parts_rendered.labels("rendered").inc(self._renderer.counts.rendered)
            self._parts_rendered.labels("reused").inc(self._renderer.counts.reused)
            self._pending = _Pending()
            self.snapshot = picture.snapshot
            self._rendered_at = picture.snapshot.taken_at

    def _deferred_for(self) -> float:
        """Seconds until the pending changes are due: 0 unless they are only success times
        rendered less than `success_gap` ago (and then never sooner: see the module's doc)."""
        if not self._pending or self._pending.more_than_success_times():
            return 0.0
        return max(0.0, self._rendered_at + self.success_gap - self.clock())

    async def _snapshot_changed(self) -> None:
        """Snapshots of the changed projects, a slice of the event loop at a time. A project
        that changes again meanwhile is in the next publish's changes too."""
        slice_started = time.perf_counter()
        for project in list(self._pending.live):
            self._parts[project] = self.state.snapshot_project(project)
            if time.perf_counter() - slice_started > SNAPSHOT_SLICE:
                await anyio.lowlevel.checkpoint()
                slice_started = time.perf_counter()

    def _picture(self, now: float) -> Picture:
        """The immutable picture to render: per-project snapshots in the state's order, and the
        stores' current parts (immutable values, copied by reference)."""
        parts = {p: self._parts[p] for p in self.state.projects() if p in self._parts}
        snapshot = Snapshot.of(
            taken_at=now,
            watch_start=self.state.watch_start,
            parts=parts,
            collections=self.state.collections(),
        )
        return Picture(
            snapshot,
            None if self.insights is None else self.insights.snapshot(),
            None if self.schedules is None else self.schedules.by_project(),
        )

    async def run(self) -> None:
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        while True:
            # Deferred success times are published when due, even if no collector asks again.
            with anyio.move_on_after(self._deferred_for() if self._pending else math.inf):
                await self._wanted.wait()
            self._wanted = anyio.Event()
            await self.publish_now()
            await anyio.sleep(self.min_gap)
