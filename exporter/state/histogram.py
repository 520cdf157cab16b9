"""A cumulative histogram with fixed buckets, as Prometheus exposes it."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HistogramData:
    """An immutable copy: `buckets` are the upper bounds, `counts` the non-cumulative counts
    per bucket plus one for +Inf."""

    buckets: tuple[float, ...]
    counts: tuple[int, ...]
    total: float

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        running = 0
        out = []
        for bound, n in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


class Histogram:
    __slots__ = ("buckets", "counts", "total")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        # Prometheus buckets are upper-inclusive (le): bisect_left puts value == bound inside.
        self.counts[bisect_left(self.buckets, value)] += 1
        self.total += value

    def freeze(self) -> HistogramData:
        return HistogramData(self.buckets, tuple(self.counts), self.total)
