from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx
from prometheus_client import CollectorRegistry

from exporter.circleci import ApiTelemetry, CircleCIClient


def _label_values(registry: CollectorRegistry, label: str) -> set[str]:
    return {
        sample.labels[label]
        for metric in registry.collect()
        if metric.name.startswith("circleci_exporter_api_")
        for sample in metric.samples
        if label in sample.labels
    }


@pytest.mark.anyio
async def test_every_attempt_counted_under_its_operation_id(
    api: respx.MockRouter,
    client: CircleCIClient,
    registry: CollectorRegistry,
    load: Callable[[str], Any],
) -> None:
    api.get("/v2/project/gh/acme/api/job/8812").mock(
        side_effect=[httpx.Response(502), httpx.Response(200, json=load("job-details.json"))]
    )
    api.get("/v2/insights/gh/acme/api/workflows/build-and-test/summary").respond(
        json=load("insights-workflow-summary.json")
    )
    await client.get_job_details("gh/acme/api", 8812)
    await client.get_workflow_summary("gh/acme/api", "build-and-test")

    def requests(endpoint: str, code: str) -> float | None:
        return registry.get_sample_value(
            "circleci_exporter_api_requests_total", {"endpoint": endpoint, "code": code}
        )

    assert requests("getJobDetails", "502") == 1.0
    assert requests("getJobDetails", "200") == 1.0
    assert requests("getWorkflowSummary", "200") == 1.0
    assert (
        registry.get_sample_value(
            "circleci_exporter_api_request_duration_seconds_count", {"endpoint": "getJobDetails"}
        )
        == 2.0
    )
    assert _label_values(registry, "endpoint") == {"getJobDetails", "getWorkflowSummary"}
    assert _label_values(registry, "reason") == {"5xx"}


def test_metric_families_match_the_contract(registry: CollectorRegistry) -> None:
    telemetry = ApiTelemetry(registry)
    telemetry.observe_request("getCurrentUser", "200", 0.2)
    telemetry.count_retry("getCurrentUser", "timeout")
    families = {metric.name: metric for metric in registry.collect()}
    assert families["circleci_exporter_api_requests"].type == "counter"
    assert families["circleci_exporter_api_retries"].type == "counter"
    duration = families["circleci_exporter_api_request_duration_seconds"]
    assert duration.type == "histogram"
    buckets = [s for s in duration.samples if s.name.endswith("_bucket")]
    assert [s.labels["le"] for s in buckets][-2:] == ["30.0", "+Inf"]
    assert (
        registry.get_sample_value(
            "circleci_exporter_api_request_duration_seconds_bucket",
            {"endpoint": "getCurrentUser", "le": "0.25"},
        )
        == 1.0
    )
