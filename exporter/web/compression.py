"""gzip for /metrics, paid once per render rather than once per scrape.

Prometheus asks for gzip on every scrape. The cached exposition is compressed the first time a
scrape asks for it after a render, and the compressor is kept just after it (flushed to a byte
boundary): each scrape copies that compressor, feeds it the few live process families and
finishes the stream. The result is one ordinary gzip member, with the CRC and length of the
whole body, for the cost of compressing a few kilobytes per scrape.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import anyio

# Level 6 (zlib's default): at 100k series it takes the body from 15 MB to under 1 MB, and the
# compression runs at most once per render in a worker thread (bench/scrape.py measures it).
LEVEL = 6
_GZIP_WBITS = 16 + zlib.MAX_WBITS


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header admits gzip (a `q=0` refuses it)."""
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() not in {"gzip", "x-gzip", "*"}:
            continue
        q = params.strip().lower()
        if q.startswith("q="):
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
        return True
    return False


@dataclass(frozen=True, slots=True)
class _Compressed:
    source: bytes
    head: bytes
    # zlib.Compress objects have no public type name to annotate with.
    compressor: Any


class GzipCache:
    """The gzip head of one cached body per format (text, OpenMetrics)."""

    def __init__(self, level: int = LEVEL) -> None:
        self.level = level
        self._compressed: dict[bool, _Compressed] = {}
        self._lock = anyio.Lock()
        self.compressions = 0

    async def body(self, cached: bytes, live: bytes, *, openmetrics: bool) -> list[bytes]:
        """gzip(cached + live) in two parts, compressing `cached` only if it is new since the
        last call."""
        compressed = self._compressed.get(openmetrics)
        if compressed is None or compressed.source is not cached:
            async with self._lock:  # concurrent scrapes of a new render share one compression
                compressed = self._compressed.get(openmetrics)
                if compressed is None or compressed.source is not cached:
                    compressed = await anyio.to_thread.run_sync(self._compress, cached)
                    self._compressed[openmetrics] = compressed
        tail = compressed.compressor.copy()
        return [compressed.head, tail.compress(live) + tail.flush()]

    def _compress(self, cached: bytes) -> _Compressed:
        compressor = zlib.compressobj(self.level, zlib.DEFLATED, _GZIP_WBITS)
        head = compressor.compress(cached) + compressor.flush(zlib.Z_SYNC_FLUSH)
        self.compressions += 1
        return _Compressed(cached, head, compressor)
