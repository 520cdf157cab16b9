"""Metrics about collection cycles, kept in the process registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from exporter.catalog import BY_NAME

# A quiet project's cycle is one request (well under a second); a first full read of a busy
# project under the rate limit can take minutes.
_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class CollectTelemetry:
    def __init__(self, registry: CollectorRegistry) -> None:
        spec = BY_NAME["circleci_exporter_collect_duration_seconds"]
        self._duration = Histogram(
            spec.name, spec.help, spec.labels, registry=registry, buckets=_BUCKETS
        )

    def observe_cycle(self, collector: str, seconds: float) -> None:
        self._duration.labels(collector).observe(seconds)
