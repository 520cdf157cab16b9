"""Builds prometheus_client metric families from label tuples, by the catalog's definitions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from exporter.metrics.catalog import BY_NAME
from exporter.state.histogram import HistogramData


class FamilyBuilder:
    """Samples of one family of the catalog; labels are given as values in catalog order."""

    __slots__ = ("_labels", "_metric", "_sample_name")

    def __init__(self, name: str) -> None:
        spec = BY_NAME[name]
        base = name.removesuffix("_total") if spec.kind == "counter" else name
        self._metric = Metric(base, spec.help, spec.prometheus_type)
        self._labels = spec.labels
        self._sample_name = name

    def add(self, values: tuple[str, ...], value: float) -> None:
        self._metric.samples.append(
            Sample(self._sample_name, dict(zip(self._labels, values, strict=True)), value)
        )

    def add_histogram(self, values: tuple[str, ...], data: HistogramData) -> None:
        labels = dict(zip(self._labels, values, strict=True))
        samples = self._metric.samples
        name = self._sample_name
        for bound, count in data.cumulative():
            le: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
            samples.append(Sample(f"{name}_bucket", {**labels, "le": le}, float(count)))
        samples.append(Sample(f"{name}_count", labels, float(data.count)))
        samples.append(Sample(f"{name}_sum", labels, data.total))

    def build(self) -> Metric:
        return self._metric

    @classmethod
    def counters(cls, name: str, values: Mapping[Any, int]) -> Metric:
        family = cls(name)
        for key, count in values.items():
            family.add(key, float(count))
        return family.build()

    @classmethod
    def histograms(cls, name: str, values: Mapping[Any, HistogramData]) -> Metric:
        family = cls(name)
        for key, data in values.items():
            family.add_histogram(key, data)
        return family.build()
