"""Metrics about collection cycles and stale-series expiry, kept in the process registry."""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from exporter.catalog import BY_NAME
from exporter.sharding import Shard

logger = logging.getLogger(__name__)

# A quiet project's cycle is one request (well under a second); a first full read of a busy
# project under the rate limit can take minutes.
_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
# What a 404 can make the collector forget.
FORGOTTEN_KINDS = ("pipeline", "workflow", "job")
EXPIRED_KINDS = ("workflow", "job", "branch")


class CollectTelemetry:
    def __init__(self, registry: CollectorRegistry) -> None:
        spec = BY_NAME["circleci_exporter_collect_duration_seconds"]
        self._duration = Histogram(
            spec.name, spec.help, spec.labels, registry=registry, buckets=_BUCKETS
        )
        spec = BY_NAME["circleci_exporter_stale_series_removed_total"]
        self._expired = Counter(spec.name, spec.help, spec.labels, registry=registry)
        for kind in EXPIRED_KINDS:
            self._expired.labels(kind)

        spec = BY_NAME["circleci_exporter_forgotten_total"]
        self._forgotten = Counter(spec.name.removesuffix("_total"), spec.help, spec.labels,
                                  registry=registry)  # fmt: skip
        for kind in FORGOTTEN_KINDS:
            self._forgotten.labels(kind)
        spec = BY_NAME["circleci_exporter_series_limit_hits_total"]
        self._series_limit_hits = Counter(
            spec.name.removesuffix("_total"), spec.help, spec.labels, registry=registry
        )
        self._series_limit_logged: set[str] = set()
        # The org feed (collect/feed.py).
        spec = BY_NAME["circleci_exporter_org_feed_overflows_total"]
        self._feed_overflows = Counter(
            spec.name.removesuffix("_total"), spec.help, spec.labels, registry=registry
        )
        spec = BY_NAME["circleci_project_in_org_feed"]
        self._in_org_feed = Gauge(spec.name, spec.help, spec.labels, registry=registry)

    def observe_cycle(self, collector: str, seconds: float) -> None:
        self._duration.labels(collector).observe(seconds)

    def count_forgotten(self, kind: str) -> None:
        self._forgotten.labels(kind).inc()

    def series_limit_hit(self, project: str) -> None:
        """Count an update dropped at collect.max_series_per_project; log the first one."""
        child = self._series_limit_hits.labels(project)
        if project not in self._series_limit_logged:
            self._series_limit_logged.add(project)
            logger.warning(
                "project reached its series limit; its new workflow and job names are dropped",
                extra={"project": project, "setting": "collect.max_series_per_project"},
            )
        child.inc()

    def count_feed_overflow(self, org: str, reason: str) -> None:
        self._feed_overflows.labels(org, reason).inc()

    def set_in_org_feed(self, project: str, in_feed: bool | None) -> None:
        """1 unless the project's own list showed pipelines its org feed should have listed."""
        self._in_org_feed.labels(project).set(0 if in_feed is False else 1)

    def count_expired(self, kind: str, series: int) -> None:
        self._expired.labels(kind).inc(series)


def register_shard_metrics(
    registry: CollectorRegistry, shard: Shard, owned_projects: Callable[[], int]
) -> None:
    """circleci_exporter_shard_info and the number of projects this shard tracks, read at
    each scrape."""
    spec = BY_NAME["circleci_exporter_shard_info"]
    info = Gauge(spec.name, spec.help, spec.labels, registry=registry)
    info.labels(str(shard.index), str(shard.total)).set(1)
    spec = BY_NAME["circleci_exporter_shard_projects"]
    Gauge(spec.name, spec.help, registry=registry).set_function(owned_projects)
