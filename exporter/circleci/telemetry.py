"""Metrics about the exporter's own CircleCI API requests; names and help come from the catalog."""

from prometheus_client import CollectorRegistry, Counter, Histogram

from exporter.catalog import BY_NAME

# CircleCI answers most reads well under a second; the long tail up to the 30 s client timeout is
# what shows a struggling API, so the buckets stretch that far.
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)


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

    def observe_request(self, endpoint: str, code: str, seconds: float) -> None:
        self._requests.labels(endpoint=endpoint, code=code).inc()
        self._duration.labels(endpoint=endpoint).observe(seconds)

    def count_retry(self, endpoint: str, reason: str) -> None:
        self._retries.labels(endpoint=endpoint, reason=reason).inc()
