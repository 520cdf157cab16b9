"""Final errors: one line, the right class, never retried when retrying cannot help."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx
from prometheus_client import CollectorRegistry

from exporter.circleci import (
    ApiStatusError,
    CircleCIClient,
    CircleCIError,
    ForbiddenError,
    MalformedResponseError,
    NotFoundError,
    TokenRefusedError,
)

PROJECT = "/v2/project/gh/acme/api"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "body", "error_class", "message"),
    [
        (
            401,
            {"message": "Invalid token provided."},
            TokenRefusedError,
            "getProjectBySlug: CircleCI refused the API token (HTTP 401): Invalid token provided.",
        ),
        (
            403,
            {"message": "Permission denied"},
            ForbiddenError,
            "getProjectBySlug: HTTP 403: Permission denied",
        ),
        (
            404,
            {"message": "Project not found."},
            NotFoundError,
            "getProjectBySlug: HTTP 404: Project not found.",
        ),
        (
            400,
            {"message": "Invalid branch\nname"},
            ApiStatusError,
            "getProjectBySlug: HTTP 400: Invalid branch name",
        ),
    ],
)
async def test_client_errors_are_not_retried(
    api: respx.MockRouter,
    client: CircleCIClient,
    registry: CollectorRegistry,
    status: int,
    body: dict[str, str],
    error_class: type[ApiStatusError],
    message: str,
) -> None:
    route = api.get(PROJECT).respond(status, json=body)
    with pytest.raises(error_class) as caught:
        await client.get_project("gh/acme/api")
    assert type(caught.value) is error_class
    assert route.call_count == 1
    assert caught.value.status == status
    assert str(caught.value) == message
    assert caught.value.operation == "getProjectBySlug"
    retried = [
        sample
        for metric in registry.collect()
        if metric.name == "circleci_exporter_api_retries"
        for sample in metric.samples
    ]
    assert retried == []
    assert (
        registry.get_sample_value(
            "circleci_exporter_api_requests_total",
            {"endpoint": "getProjectBySlug", "code": str(status)},
        )
        == 1.0
    )


@pytest.mark.anyio
async def test_error_without_json_body_uses_text(
    api: respx.MockRouter, client: CircleCIClient
) -> None:
    api.get(PROJECT).respond(404, text="<html>\n<h1>Not Found</h1>\n</html>")
    with pytest.raises(NotFoundError, match=r"HTTP 404: <html> <h1>Not Found</h1> </html>$"):
        await client.get_project("gh/acme/api")


@pytest.mark.anyio
async def test_long_error_messages_are_truncated(
    api: respx.MockRouter, client: CircleCIClient
) -> None:
    api.get(PROJECT).respond(400, json={"message": "x" * 5000})
    with pytest.raises(ApiStatusError) as caught:
        await client.get_project("gh/acme/api")
    assert len(caught.value.message) == 200
    assert caught.value.message.endswith("…")


@pytest.mark.anyio
async def test_garbage_body_is_malformed_not_retried(
    api: respx.MockRouter, client: CircleCIClient
) -> None:
    route = api.get(PROJECT).respond(200, text="<!DOCTYPE html><title>Maintenance</title>")
    with pytest.raises(MalformedResponseError) as caught:
        await client.get_project("gh/acme/api")
    assert route.call_count == 1
    assert str(caught.value).startswith("getProjectBySlug: response is not JSON (HTTP 200): ")
    assert "\n" not in str(caught.value)


@pytest.mark.anyio
async def test_wrong_shape_names_operation_and_first_problem(
    api: respx.MockRouter, client: CircleCIClient, load: Callable[[str], Any]
) -> None:
    page = load("workflows.json")
    del page["items"][1]["status"]
    api.get("/v2/pipeline/p-1/workflow").respond(json=page)
    with pytest.raises(MalformedResponseError) as caught:
        [workflow async for workflow in client.iter_pipeline_workflows("p-1")]
    assert str(caught.value) == (
        "listWorkflowsByPipelineId: unexpected response shape at items.1.status: Field required"
    )


@pytest.mark.anyio
async def test_list_where_object_expected(api: respx.MockRouter, client: CircleCIClient) -> None:
    api.get("/v2/project/gh/acme/api").respond(json=[{"slug": "gh/acme/api"}])
    with pytest.raises(
        MalformedResponseError, match=r"^getProjectBySlug: unexpected response shape"
    ):
        await client.get_project("gh/acme/api")


@pytest.mark.anyio
async def test_object_where_list_expected(api: respx.MockRouter, client: CircleCIClient) -> None:
    api.get("/v2/pipeline/p-1/workflow").respond(json={"items": {"message": "oops"}})
    with pytest.raises(MalformedResponseError) as caught:
        [workflow async for workflow in client.iter_pipeline_workflows("p-1")]
    assert str(caught.value).startswith(
        "listWorkflowsByPipelineId: unexpected response shape at items"
    )


@pytest.mark.anyio
async def test_all_errors_share_the_base_class(
    api: respx.MockRouter, make_client: Callable[..., CircleCIClient]
) -> None:
    api.get("/v2/pipeline/p-1").mock(side_effect=httpx.ConnectTimeout("connect timed out"))
    async with make_client(max_retries=0) as client:
        with pytest.raises(
            CircleCIError, match=r"^getPipelineById: ConnectTimeout after 1 attempt"
        ):
            await client.get_pipeline("p-1")
