"""Snapshot → exposition bytes, in the Prometheus text format or OpenMetrics. No I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from prometheus_client import CollectorRegistry, exposition
from prometheus_client.openmetrics import exposition as openmetrics

from exporter.catalog import Family
from exporter.metrics.builder import BuiltFamily, FamilyBuilder
from exporter.state.insights import InsightsSnapshot
from exporter.state.schedules import ScheduleKey, ScheduleRow
from exporter.state.snapshot import Snapshot

# The body is the classic 0.0.4 text format (our names need none of 1.0.0's escaping), and
# 0.0.4 is what every Prometheus version, Debian's 2.42 included, negotiates.
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = openmetrics.CONTENT_TYPE_LATEST


@dataclass(frozen=True, slots=True)
class Rendered:
    """One snapshot in both formats. The OpenMetrics body lacks its `# EOF` line, so that
    the families of the process registry can follow it."""

    text: bytes
    openmetrics: bytes
    series: int


@dataclass(frozen=True, slots=True)
class Chunk:
    """The sample lines of one part of the picture (a project's series, its Insights, an
    org's, its schedules, the exporter's own): per family with samples, its lines, encoded.
    The two formats share them; only the families' headers differ."""

    lines: Mapping[str, bytes]
    series: int


def chunk_of(families: Iterable[BuiltFamily]) -> Chunk:
    lines: dict[str, bytes] = {}
    series = 0
    for family in families:
        if family.lines:
            lines[family.spec.name] = "".join(family.lines).encode()
            series += len(family.lines)
    return Chunk(MappingProxyType(lines), series)


@dataclass(frozen=True, slots=True)
class Section:
    """Chunks whose families go out together: each family once, in `order`, with the lines
    of every chunk in turn (a family without samples is left out)."""

    order: tuple[Family, ...]
    chunks: Sequence[Chunk]


def family_order(families: Iterable[BuiltFamily]) -> tuple[Family, ...]:
    return tuple(family.spec for family in families)


def _help(text: str, openmetrics: bool) -> str:
    escaped = text.replace("\\", r"\\").replace("\n", r"\n")
    return escaped.replace('"', r"\"") if openmetrics else escaped


def family_header(spec: Family, openmetrics: bool) -> str:
    """The HELP and TYPE lines of a family."""
    # OpenMetrics names a counter family without its `_total` sample suffix.
    name = spec.name.removesuffix("_total") if openmetrics and spec.kind == "counter" else spec.name
    return f"# HELP {name} {_help(spec.help, openmetrics)}\n# TYPE {name} {spec.prometheus_type}\n"


@cache
def _header_bytes(spec: Family, openmetrics: bool) -> bytes:
    return family_header(spec, openmetrics).encode()


def assemble(sections: Sequence[Section]) -> Rendered:
    """Both bodies from the sections' chunks, then `circleci_exporter_series`."""
    text: list[bytes] = []
    openmetrics: list[bytes] = []
    series = 0

    def add(spec: Family, pieces: list[bytes]) -> None:
        text.append(_header_bytes(spec, False))
        openmetrics.append(_header_bytes(spec, True))
        text.extend(pieces)
        openmetrics.extend(pieces)

    for section in sections:
        for spec in section.order:
            pieces = [c.lines[spec.name] for c in section.chunks if spec.name in c.lines]
            if pieces:
                add(spec, pieces)
        series += sum(c.series for c in section.chunks)
    count = FamilyBuilder("circleci_exporter_series")
    count.add((), float(series))
    built = count.build()
    add(built.spec, ["".join(built.lines).encode()])
    return Rendered(b"".join(text), b"".join(openmetrics), series)


def render(
    snapshot: Snapshot,
    intervals: Mapping[str, float],
    insights: InsightsSnapshot | None = None,
    schedules: Mapping[ScheduleKey, ScheduleRow] | None = None,
) -> Rendered:
    """Everything, from scratch: what the publisher's incremental renders must equal."""
    # Imported here: the incremental renderer builds on this module.
    from exporter.metrics.incremental import IncrementalRenderer, Picture, by_project

    picture = Picture(snapshot, insights, None if schedules is None else by_project(schedules))
    return IncrementalRenderer(intervals).render(picture, None)


def render_process(registry: CollectorRegistry, fmt_openmetrics: bool) -> bytes:
    """The process registry (request counters and the like), live at each scrape."""
    if fmt_openmetrics:
        body: bytes = openmetrics.generate_latest(registry)  # type: ignore[no-untyped-call]
        return body
    return exposition.generate_latest(registry)
