"""Renders again only the parts of the picture that changed.

The exposition is made of chunks (`exposition.Chunk`): one per project for its live series,
one per project and per org for the Insights, one per project for its schedules, and one for
the exporter's own families. Each chunk is cached with the part it was rendered from; a
render is given the parts that changed since the last one and renders only those, then joins
the cached chunks into both bodies. The bytes are those of a render from scratch (`render`),
as the tests check over random changes: a family's lines go out part by part, in the order
the stores hold their parts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Generic, TypeVar

from exporter.metrics.exporter import exporter_families
from exporter.metrics.exposition import (
    Chunk,
    Rendered,
    Section,
    assemble,
    chunk_of,
    family_order,
)
from exporter.metrics.insights import insights_families
from exporter.metrics.live import live_families
from exporter.metrics.schedules import schedule_families
from exporter.state.insights import InsightsSnapshot, OrgInsights, ProjectInsights
from exporter.state.schedules import ScheduleKey, ScheduleRow
from exporter.state.snapshot import ProjectSnapshot, Snapshot

_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class Picture:
    """What one render shows; all of it immutable, so it can be rendered in a worker thread.
    `schedules`: project → schedule name → row."""

    snapshot: Snapshot
    insights: InsightsSnapshot | None = None
    schedules: Mapping[str, Mapping[str, ScheduleRow]] | None = None


@dataclass(frozen=True, slots=True)
class Dirty:
    """The parts changed since the last render, by their keys (project slugs, org slugs)."""

    live: AbstractSet[str] = frozenset()
    insights_projects: AbstractSet[str] = frozenset()
    insights_orgs: AbstractSet[str] = frozenset()
    schedules: AbstractSet[str] = frozenset()


@dataclass(slots=True)
class RenderCounts:
    """Parts rendered again and parts whose cached chunk was reused, by the last render."""

    rendered: int = 0
    reused: int = 0


def by_project(schedules: Mapping[ScheduleKey, ScheduleRow]) -> dict[str, dict[str, ScheduleRow]]:
    grouped: dict[str, dict[str, ScheduleRow]] = {}
    for key, row in schedules.items():
        grouped.setdefault(key.project, {})[key.schedule] = row
    return grouped


def _live_chunk(part: ProjectSnapshot) -> Chunk:
    return chunk_of(live_families(part))


def _insights_project_chunk(project: ProjectInsights) -> Chunk:
    return chunk_of(
        insights_families(InsightsSnapshot(MappingProxyType({project.project: project}), {}))
    )


def _insights_org_chunk(org: OrgInsights) -> Chunk:
    return chunk_of(insights_families(InsightsSnapshot({}, MappingProxyType({org.org: org}))))


def _schedule_chunk(project: str, rows: Mapping[str, ScheduleRow]) -> Chunk:
    return chunk_of(
        schedule_families({ScheduleKey(project, name): row for name, row in rows.items()})
    )


_EMPTY_PART = ProjectSnapshot("", {}, {}, {}, {}, {}, {}, {}, {}, {}, {})
_LIVE_ORDER = family_order(live_families(_EMPTY_PART))
_INSIGHTS_ORDER = family_order(insights_families(InsightsSnapshot({}, {})))
_SCHEDULE_ORDER = family_order(schedule_families({}))


@dataclass(slots=True)
class _ChunkCache(Generic[_V]):
    render_one: Callable[[str, _V], Chunk]
    chunks: dict[str, Chunk] = field(default_factory=dict)

    def update(
        self, parts: Mapping[str, _V], changed: AbstractSet[str] | None, counts: RenderCounts
    ) -> dict[str, Chunk]:
        """The chunks of `parts`, in their order: cached unless changed (None: all changed).
        Not kept until `commit`, so a failed render leaves the cache as it was."""
        fresh: dict[str, Chunk] = {}
        for key, part in parts.items():
            chunk = None if changed is None or key in changed else self.chunks.get(key)
            if chunk is None:
                chunk = self.render_one(key, part)
                counts.rendered += 1
            else:
                counts.reused += 1
            fresh[key] = chunk
        return fresh


class IncrementalRenderer:
    """Keeps the chunks of the last render. `render` is not reentrant: one at a time."""

    def __init__(self, intervals: Mapping[str, float]) -> None:
        self.intervals = dict(intervals)
        self.counts = RenderCounts()
        self._live: _ChunkCache[ProjectSnapshot] = _ChunkCache(lambda _, part: _live_chunk(part))
        self._insights_projects: _ChunkCache[ProjectInsights] = _ChunkCache(
            lambda _, p: _insights_project_chunk(p)
        )
        self._insights_orgs: _ChunkCache[OrgInsights] = _ChunkCache(
            lambda _, org: _insights_org_chunk(org)
        )
        self._schedules: _ChunkCache[Mapping[str, ScheduleRow]] = _ChunkCache(_schedule_chunk)

    def render(self, picture: Picture, dirty: Dirty | None) -> Rendered:
        """Both bodies of `picture`; only the parts in `dirty` (None: every part) and the
        exporter's own families are rendered, the rest comes from the cache."""
        counts = RenderCounts()
        live = self._live.update(
            picture.snapshot.parts, None if dirty is None else dirty.live, counts
        )
        sections = [Section(_LIVE_ORDER, list(live.values()))]
        insights_projects: dict[str, Chunk] = {}
        insights_orgs: dict[str, Chunk] = {}
        if picture.insights is not None:
            insights_projects = self._insights_projects.update(
                picture.insights.projects,
                None if dirty is None else dirty.insights_projects,
                counts,
            )
            insights_orgs = self._insights_orgs.update(
                picture.insights.orgs, None if dirty is None else dirty.insights_orgs, counts
            )
            chunks = [*insights_projects.values(), *insights_orgs.values()]
            sections.append(Section(_INSIGHTS_ORDER, chunks))
        schedules: dict[str, Chunk] = {}
        if picture.schedules is not None:
            schedules = self._schedules.update(
                picture.schedules, None if dirty is None else dirty.schedules, counts
            )
            sections.append(Section(_SCHEDULE_ORDER, list(schedules.values())))
        # The exporter's own families (collection health, the snapshot's time): a few lines
        # per project, rendered every time.
        own = list(exporter_families(picture.snapshot, self.intervals))
        sections.append(Section(family_order(own), [chunk_of(own)]))
        rendered = assemble(sections)
        self._live.chunks = live
        self._insights_projects.chunks = insights_projects
        self._insights_orgs.chunks = insights_orgs
        self._schedules.chunks = schedules
        self.counts = counts
        return rendered
