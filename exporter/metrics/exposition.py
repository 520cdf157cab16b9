"""Snapshot → exposition bytes, in the Prometheus text format or OpenMetrics. No I/O."""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from prometheus_client import CollectorRegistry, exposition
from prometheus_client.openmetrics import exposition as openmetrics

from exporter.catalog import BY_NAME, Family
from exporter.metrics.builder import BuiltFamily, FamilyBuilder
from exporter.state.insights import InsightsSnapshot
from exporter.state.schedules import ScheduleKey, ScheduleRow
from exporter.state.snapshot import Snapshot

# The body is the classic 0.0.4 text format (our names need none of 1.0.0's escaping), and
# 0.0.4 is what every Prometheus version, Debian's 2.42 included, negotiates.
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = openmetrics.CONTENT_TYPE_LATEST


# gzip, as Prometheus asks for on every scrape. Each piece of the body (a family's lines of one
# part, a family's header) is deflated on its own when it is rendered and kept with it, so a
# render compresses only what it rendered again: compressing the whole 15 MB body of 100k
# series anew took 0.3 to 0.6 s per render, paid by the first scrape after it. Deflate blocks
# that end in a sync flush and refer to nothing before them can be concatenated into one
# stream, and a gzip member is that stream between a fixed header and the CRC-32 and length
# of the whole body (RFC 1952), so the result is one ordinary gzip member. Level 6 is zlib's
# default; pieces compressed apart lose a little of the ratio (bench/scrape.py shows the bytes).
GZIP_LEVEL = 6
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no mtime


def deflate_piece(data: bytes) -> bytes:
    """Raw deflate blocks of `data`, none final, ending on a byte boundary."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


@dataclass(frozen=True, slots=True)
class GzipHead:
    """A gzip member of a body, all but its end: the header and the body's deflate blocks,
    with the CRC-32 and the length of the body."""

    head: bytes
    crc: int
    size: int

    def finish(self, tail: bytes) -> bytes:
        """The rest of the member, for the body followed by `tail` (a few kB: the process
        families of each scrape): `tail` in the final block, then the trailer."""
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        crc = zlib.crc32(tail, self.crc)
        size = (self.size + len(tail)) & 0xFFFFFFFF
        return compressor.compress(tail) + compressor.flush() + struct.pack("<II", crc, size)


@dataclass(frozen=True, slots=True)
class Rendered:
    """One snapshot in both formats, plain and gzip. The OpenMetrics body lacks its `# EOF`
    line, so that the families of the process registry can follow it."""

    text: bytes
    openmetrics: bytes
    series: int
    text_gzip: GzipHead
    openmetrics_gzip: GzipHead


@dataclass(frozen=True, slots=True)
class Chunk:
    """The sample lines of one part of the picture (a project's series, its Insights, an
    org's, its schedules, the exporter's own): per family with samples, its lines, encoded,
    and the same deflated (`deflate_piece`). The two formats share them; only the families'
    headers differ."""

    lines: Mapping[str, bytes]
    deflated: Mapping[str, bytes]
    series: int


def chunk_of(families: Iterable[BuiltFamily]) -> Chunk:
    lines: dict[str, bytes] = {}
    series = 0
    for family in families:
        if family.lines:
            lines[family.spec.name] = "".join(family.lines).encode()
            series += len(family.lines)
        # Renders run in a worker thread: hand the GIL to the event loop between families
        # rather than make it wait for the switch interval each time it wakes.
        time.sleep(0)
    deflated = {name: deflate_piece(data) for name, data in lines.items()}
    return Chunk(MappingProxyType(lines), MappingProxyType(deflated), series)


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
def _header_bytes(spec: Family, openmetrics: bool) -> tuple[bytes, bytes]:
    """A family's header, plain and deflated."""
    header = family_header(spec, openmetrics).encode()
    return header, deflate_piece(header)


class _Body:
    """One format's body, plain and deflated, piece by piece."""

    def __init__(self, openmetrics: bool) -> None:
        self.openmetrics = openmetrics
        self.plain: list[bytes] = []
        self.deflated: list[bytes] = [_GZIP_HEADER]

    def add(self, spec: Family, plain: list[bytes], deflated: list[bytes]) -> None:
        header, header_deflated = _header_bytes(spec, self.openmetrics)
        self.plain.append(header)
        self.plain.extend(plain)
        self.deflated.append(header_deflated)
        self.deflated.extend(deflated)

    def finish(self) -> tuple[bytes, GzipHead]:
        body = b"".join(self.plain)
        return body, GzipHead(b"".join(self.deflated), zlib.crc32(body), len(body) & 0xFFFFFFFF)


def assemble(sections: Sequence[Section]) -> Rendered:
    """Both bodies from the sections' chunks, then `circleci_exporter_series`."""
    text, openmetrics = _Body(False), _Body(True)
    series = 0
    for section in sections:
        for spec in section.order:
            having = [c for c in section.chunks if spec.name in c.lines]
            if having:
                plain = [c.lines[spec.name] for c in having]
                deflated = [c.deflated[spec.name] for c in having]
                text.add(spec, plain, deflated)
                openmetrics.add(spec, plain, deflated)
        series += sum(c.series for c in section.chunks)
    count = FamilyBuilder("circleci_exporter_series")
    count.add((), float(series))
    last = chunk_of([count.build()])
    spec = BY_NAME["circleci_exporter_series"]
    for body in (text, openmetrics):
        body.add(spec, list(last.lines.values()), list(last.deflated.values()))
    text_body, text_gzip = text.finish()
    openmetrics_body, openmetrics_gzip = openmetrics.finish()
    return Rendered(text_body, openmetrics_body, series, text_gzip, openmetrics_gzip)


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
