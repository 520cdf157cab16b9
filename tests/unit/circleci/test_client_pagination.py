from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from exporter.circleci import CircleCIClient, PaginationLoopError

PIPELINES = "/v2/project/gh/acme/api/pipeline"
PAGE_2_TOKEN = "AARLwwV5Tr7tNTUxNDMxNDU4ODg2NjYwMDA2XwzO1A"


def _page_router(pages: dict[str | None, Any]) -> Callable[[httpx.Request], httpx.Response]:
    """Answer each request with the page registered under its `page-token` (None: first page)."""

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=pages[request.url.params.get("page-token")])

    return respond


@pytest.mark.anyio
async def test_follows_tokens_until_the_page_without_one(
    api: respx.MockRouter, client: CircleCIClient, load: Callable[[str], Any]
) -> None:
    page2 = load("pipelines.page2.json")
    assert "next_page_token" not in page2  # the live API sometimes omits it on the last page
    route = api.get(PIPELINES).mock(
        side_effect=_page_router({None: load("pipelines.page1.json"), PAGE_2_TOKEN: page2})
    )
    numbers = [p.number async for p in client.iter_project_pipelines("gh/acme/api", branch="main")]
    assert numbers == [1042, 1041, 1040]
    assert [call.request.url.params.get("page-token") for call in route.calls] == [
        None,
        PAGE_2_TOKEN,
    ]
    # other query parameters are kept on every page
    assert all(call.request.url.params["branch"] == "main" for call in route.calls)


@pytest.mark.anyio
async def test_null_token_ends_pagination(
    api: respx.MockRouter, client: CircleCIClient, load: Callable[[str], Any]
) -> None:
    route = api.get("/v2/workflow/w-1/job").respond(json=load("jobs.json"))
    jobs = [job.name async for job in client.iter_workflow_jobs("w-1")]
    assert jobs == ["unit-tests", "hold-for-approval", "deploy-prod"]
    assert route.call_count == 1


@pytest.mark.anyio
async def test_empty_string_token_ends_pagination(
    api: respx.MockRouter, client: CircleCIClient
) -> None:
    route = api.get("/v2/workflow/w-1/job").respond(json={"items": [], "next_page_token": ""})
    assert [job async for job in client.iter_workflow_jobs("w-1")] == []
    assert route.call_count == 1


@pytest.mark.anyio
async def test_early_stop_fetches_only_needed_pages(
    api: respx.MockRouter, client: CircleCIClient, load: Callable[[str], Any]
) -> None:
    route = api.get(PIPELINES).mock(
        side_effect=_page_router(
            {None: load("pipelines.page1.json"), PAGE_2_TOKEN: load("pipelines.page2.json")}
        )
    )
    seen = []
    async for pipeline in client.iter_project_pipelines("gh/acme/api"):
        seen.append(pipeline.number)
        if pipeline.number <= 1041:  # polling stops at the last pipeline it already knows
            break
    assert seen == [1042, 1041]
    assert route.call_count == 1


@pytest.mark.anyio
async def test_repeated_token_raises_instead_of_looping(
    api: respx.MockRouter, client: CircleCIClient, load: Callable[[str], Any]
) -> None:
    page1 = load("pipelines.page1.json")
    looping_page2 = {**load("pipelines.page2.json"), "next_page_token": PAGE_2_TOKEN}
    route = api.get(PIPELINES).mock(
        side_effect=_page_router({None: page1, PAGE_2_TOKEN: looping_page2})
    )
    seen = []
    with pytest.raises(PaginationLoopError) as caught:
        async for pipeline in client.iter_project_pipelines("gh/acme/api"):
            seen.append(pipeline.number)
    assert seen == [1042, 1041, 1040]
    assert route.call_count == 2
    assert str(caught.value).startswith("listPipelinesForProject: page 2 repeated")
