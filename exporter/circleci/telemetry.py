"""Metrics about the exporter's own CircleCI API requests (design/metrics.md)."""

from prometheus_client import CollectorRegistry, Counter, Histogram

# CircleCI answers most reads well under a second; the long tail up to the 30 s client timeout is
# what shows a struggling API, so the buckets stretch that far.
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)


class ApiTelemetry:
    """Counts every request attempt and retry. `endpoint` is always an OpenAPI operationId."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Counter(
            "circleci_exporter_api_requests_total",
            "CircleCI API request attempts, by operation and HTTP status (or `error`)",
            ["endpoint", "code"],
            registry=registry,
        )
        self._duration = Histogram(
            "circleci_exporter_api_request_duration_seconds",
            "Duration of CircleCI API request attempts",
            ["endpoint"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self._retries = Counter(
            "circleci_exporter_api_retries_total",
            "CircleCI API request retries, by operation and reason (429, 5xx, timeout, connection)",
            ["endpoint", "reason"],
            registry=registry,
        )

    def observe_request(self, endpoint: str, code: str, seconds: float) -> None:
        self._requests.labels(endpoint=endpoint, code=code).inc()
        self._duration.labels(endpoint=endpoint).observe(seconds)

    def count_retry(self, endpoint: str, reason: str) -> None:
        self._retries.labels(endpoint=endpoint, reason=reason).inc()
