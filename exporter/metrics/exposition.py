"""Snapshot → exposition bytes, in the Prometheus text format or OpenMetrics. No I/O."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, exposition
from prometheus_client.core import Metric
from prometheus_client.openmetrics import exposition as openmetrics

from exporter.metrics.builder import FamilyBuilder
from exporter.metrics.exporter import exporter_families
from exporter.metrics.insights import insights_families
from exporter.metrics.live import live_families
from exporter.state.insights import InsightsSnapshot
from exporter.state.snapshot import Snapshot

# The body is the classic 0.0.4 text format (our names need none of 1.0.0's escaping), and
# 0.0.4 is what every Prometheus version, Debian's 2.42 included, negotiates.
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = openmetrics.CONTENT_TYPE_LATEST
_EOF = b"# EOF\n"


class _Families:
    """What prometheus_client's generators expect of a registry: a `collect()`."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


@dataclass(frozen=True, slots=True)
class Rendered:
    """One snapshot in both formats. The OpenMetrics body lacks its `# EOF` line, so that
    the families of the process registry can follow it."""

    text: bytes
    openmetrics: bytes
    series: int


def _families(
    snapshot: Snapshot, intervals: Mapping[str, float], insights: InsightsSnapshot | None
) -> Iterator[Metric]:
    yield from live_families(snapshot)
    if insights is not None:
        yield from insights_families(insights)
    yield from exporter_families(snapshot, intervals)


def render(
    snapshot: Snapshot,
    intervals: Mapping[str, float],
    insights: InsightsSnapshot | None = None,
) -> Rendered:
    families = [f for f in _families(snapshot, intervals, insights) if f.samples]
    series = sum(len(f.samples) for f in families)
    count = FamilyBuilder("circleci_exporter_series")
    count.add((), float(series))
    families.append(count.build())
    text = exposition.generate_latest(_Families(families))
    om: bytes = openmetrics.generate_latest(_Families(families))  # type: ignore[no-untyped-call]
    return Rendered(text, om.removesuffix(_EOF), series)


def render_process(registry: CollectorRegistry, fmt_openmetrics: bool) -> bytes:
    """The process registry (request counters and the like), live at each scrape."""
    if fmt_openmetrics:
        body: bytes = openmetrics.generate_latest(registry)  # type: ignore[no-untyped-call]
        return body
    return exposition.generate_latest(registry)
