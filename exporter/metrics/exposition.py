"""Snapshot → exposition bytes, in the Prometheus text format or OpenMetrics. No I/O."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, exposition
from prometheus_client.openmetrics import exposition as openmetrics

from exporter.catalog import Family
from exporter.metrics.builder import BuiltFamily, FamilyBuilder
from exporter.metrics.exporter import exporter_families
from exporter.metrics.insights import insights_families
from exporter.metrics.live import live_families
from exporter.metrics.schedules import schedule_families
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


def _families(
    snapshot: Snapshot,
    intervals: Mapping[str, float],
    insights: InsightsSnapshot | None,
    schedules: Mapping[ScheduleKey, ScheduleRow] | None,
) -> Iterator[BuiltFamily]:
    yield from live_families(snapshot)
    if insights is not None:
        yield from insights_families(insights)
    if schedules is not None:
        yield from schedule_families(schedules)
    yield from exporter_families(snapshot, intervals)


def _help(text: str, openmetrics: bool) -> str:
    escaped = text.replace("\\", r"\\").replace("\n", r"\n")
    return escaped.replace('"', r"\"") if openmetrics else escaped


def family_header(spec: Family, openmetrics: bool) -> str:
    """The HELP and TYPE lines of a family."""
    # OpenMetrics names a counter family without its `_total` sample suffix.
    name = spec.name.removesuffix("_total") if openmetrics and spec.kind == "counter" else spec.name
    return f"# HELP {name} {_help(spec.help, openmetrics)}\n# TYPE {name} {spec.prometheus_type}\n"


def _write(families: list[BuiltFamily], openmetrics: bool) -> bytes:
    parts: list[str] = []
    for family in families:
        parts.append(family_header(family.spec, openmetrics))
        parts.extend(family.lines)
    return "".join(parts).encode()


def render(
    snapshot: Snapshot,
    intervals: Mapping[str, float],
    insights: InsightsSnapshot | None = None,
    schedules: Mapping[ScheduleKey, ScheduleRow] | None = None,
) -> Rendered:
    families = [f for f in _families(snapshot, intervals, insights, schedules) if f.lines]
    series = sum(len(f.lines) for f in families)
    count = FamilyBuilder("circleci_exporter_series")
    count.add((), float(series))
    families.append(count.build())
    return Rendered(_write(families, False), _write(families, True), series)


def render_process(registry: CollectorRegistry, fmt_openmetrics: bool) -> bytes:
    """The process registry (request counters and the like), live at each scrape."""
    if fmt_openmetrics:
        body: bytes = openmetrics.generate_latest(registry)  # type: ignore[no-untyped-call]
        return body
    return exposition.generate_latest(registry)
