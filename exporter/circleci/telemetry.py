"""Metrics about the exporter's own CircleCI API requests; names and help come from the catalog."""

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from exporter.catalog import BY_NAME

# CircleCI answers most reads well under a second; the long tail up to the 30 s client timeout is
# what shows a struggling API, so the buckets stretch that far.
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)


# Why every request may be held back: a 429 (the whole token is throttled) or the circuit
# breaker (CircleCI unreachable).
PAUSE_REASONS = ("429", "circuit_breaker")


class ApiTelemetry:
    """Counts every request attempt and retry. `endpoint` is always an OpenAPI operationId."""

    def __init__(self, registry: CollectorRegistry) -> None:
        requests = BY_NAME["circleci_exporter_api_requests_total"]
        self._requests = Counter(requests.name, requests.help, requests.labels, registry=registry)
        duration = BY_NAME["circleci_exporter_api_request_duration_seconds"]
        self._duration = Histogram(
            duration.name,
            duration.help,
            duration.labels,
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        retries = BY_NAME["circleci_exporter_api_retries_total"]
        self._retries = Counter(retries.name, retries.help, retries.labels, registry=registry)
        hits = BY_NAME["circleci_exporter_api_page_limit_hits_total"]
        self._page_limit_hits = Counter(hits.name, hits.help, hits.labels, registry=registry)
        paused = BY_NAME["circleci_exporter_rate_limited_until_timestamp_seconds"]
        self._paused_until = Gauge(paused.name, paused.help, paused.labels, registry=registry)
        self._paused: dict[str, float] = dict.fromkeys(PAUSE_REASONS, 0.0)
        for reason in PAUSE_REASONS:
            self._paused_until.labels(reason=reason).set(0)

    def observe_request(self, endpoint: str, code: str, seconds: float) -> None:
        self._requests.labels(endpoint=endpoint, code=code).inc()
        self._duration.labels(endpoint=endpoint).observe(seconds)

    def count_retry(self, endpoint: str, reason: str) -> None:
        self._retries.labels(endpoint=endpoint, reason=reason).inc()

    def count_page_limit_hit(self, endpoint: str) -> None:
        self._page_limit_hits.labels(endpoint=endpoint).inc()

    def pause(self, reason: str, seconds: float) -> None:
        """Every request is held back `seconds` from now, because of `reason`."""
        until = max(self._paused.get(reason, 0.0), time.time() + seconds)
        self._paused[reason] = until
        self._paused_until.labels(reason=reason).set(until)
