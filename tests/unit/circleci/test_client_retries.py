"""Retries on 429, 5xx, timeouts and connection errors; waits are read off the fake clock."""

import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
import respx
from prometheus_client import CollectorRegistry

from exporter.circleci import (
    ApiStatusError,
    Backoff,
    CircleCIClient,
    RateLimiter,
    TransportFailedError,
)

if TYPE_CHECKING:  # conftest is not importable by name when several test folders have one
    from conftest import FakeClock

SLUG = "gh/acme/api"
PROJECT = f"/v2/project/{SLUG}"


def _retries(registry: CollectorRegistry, endpoint: str, reason: str) -> float | None:
    return registry.get_sample_value(
        "circleci_exporter_api_retries_total", {"endpoint": endpoint, "reason": reason}
    )


def _requests(registry: CollectorRegistry, endpoint: str, code: str) -> float | None:
    return registry.get_sample_value(
        "circleci_exporter_api_requests_total", {"endpoint": endpoint, "code": code}
    )


@pytest.mark.anyio
async def test_429_waits_retry_after(
    api: respx.MockRouter,
    client: CircleCIClient,
    clock: "FakeClock",
    registry: CollectorRegistry,
    load: Callable[[str], Any],
) -> None:
    sent_at: list[float] = []
    answers = iter(
        [
            httpx.Response(
                429, headers={"Retry-After": "7"}, json={"message": "Rate limit exceeded."}
            ),
            httpx.Response(200, json=load("project.json")),
        ]
    )

    def respond(request: httpx.Request) -> httpx.Response:
        sent_at.append(clock.now)
        return next(answers)

    api.get(PROJECT).mock(side_effect=respond)
    project = await client.get_project(SLUG)
    assert project.slug == SLUG
    assert sent_at == [0.0, 7.0]
    assert clock.sleeps == [7.0]
    assert _retries(registry, "getProjectBySlug", "429") == 1.0
    assert _requests(registry, "getProjectBySlug", "429") == 1.0
    assert _requests(registry, "getProjectBySlug", "200") == 1.0


@pytest.mark.anyio
async def test_429_with_ratelimit_reset(
    api: respx.MockRouter, client: CircleCIClient, clock: "FakeClock", load: Callable[[str], Any]
) -> None:
    api.get(PROJECT).mock(
        side_effect=[
            httpx.Response(429, headers={"RateLimit-Reset": "12", "X-RateLimit-Reset": "12"}),
            httpx.Response(200, json=load("project.json")),
        ]
    )
    await client.get_project(SLUG)
    assert clock.sleeps == [12.0]


@pytest.mark.anyio
async def test_429_blocks_other_requests_too(
    api: respx.MockRouter,
    make_client: Callable[..., CircleCIClient],
    clock: "FakeClock",
    load: Callable[[str], Any],
) -> None:
    sent_at: dict[str, float] = {}

    def record(name: str, response: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
        def respond(request: httpx.Request) -> httpx.Response:
            sent_at[name] = clock.now
            return response

        return respond

    throttled = httpx.Response(429, headers={"Retry-After": "30"})
    api.get("/v2/pipeline/p-1").mock(side_effect=record("pipeline", throttled))
    api.get(PROJECT).mock(
        side_effect=record("project", httpx.Response(200, json=load("project.json")))
    )
    async with make_client(max_retries=0) as client:
        with pytest.raises(ApiStatusError, match="HTTP 429"):
            await client.get_pipeline("p-1")
        await client.get_project(SLUG)
    assert sent_at == {"pipeline": 0.0, "project": 30.0}


@pytest.mark.anyio
async def test_429_without_headers_uses_jittered_backoff(
    api: respx.MockRouter,
    make_client: Callable[..., CircleCIClient],
    clock: "FakeClock",
    load: Callable[[str], Any],
) -> None:
    api.get(PROJECT).mock(
        side_effect=[
            httpx.Response(429),
            httpx.Response(429),
            httpx.Response(200, json=load("project.json")),
        ]
    )
    expected = Backoff(base=2.0, cap=30.0, rng=random.Random(5))
    async with make_client(backoff=Backoff(base=2.0, cap=30.0, rng=random.Random(5))) as client:
        await client.get_project(SLUG)
    assert clock.sleeps == [expected.delay(0), expected.delay(1)]
    assert 0 <= clock.sleeps[0] <= 2.0 and 0 <= clock.sleeps[1] <= 4.0


@pytest.mark.anyio
async def test_5xx_then_success(
    api: respx.MockRouter,
    client: CircleCIClient,
    clock: "FakeClock",
    registry: CollectorRegistry,
    load: Callable[[str], Any],
) -> None:
    route = api.get(PROJECT).mock(
        side_effect=[
            httpx.Response(502, text="<html><body>502 Bad Gateway</body></html>"),
            httpx.Response(503, headers={"Retry-After": "2"}),
            httpx.Response(200, json=load("project.json")),
        ]
    )
    await client.get_project(SLUG)
    assert route.call_count == 3
    assert len(clock.sleeps) == 2
    assert 0.0 <= clock.sleeps[0] <= 1.0  # first backoff step: uniform(0, base)
    assert clock.sleeps[1] == 2.0  # Retry-After on a 503 is honoured too
    assert _retries(registry, "getProjectBySlug", "5xx") == 2.0


@pytest.mark.anyio
async def test_retries_exhausted(
    api: respx.MockRouter,
    make_client: Callable[..., CircleCIClient],
    registry: CollectorRegistry,
) -> None:
    route = api.get(PROJECT).respond(503, json={"message": "Service temporarily unavailable"})
    async with make_client(max_retries=2) as client:
        with pytest.raises(ApiStatusError) as caught:
            await client.get_project(SLUG)
    assert route.call_count == 3
    assert caught.value.status == 503
    assert str(caught.value) == "getProjectBySlug: HTTP 503: Service temporarily unavailable"
    assert _requests(registry, "getProjectBySlug", "503") == 3.0
    assert _retries(registry, "getProjectBySlug", "5xx") == 2.0


@pytest.mark.anyio
async def test_timeout_is_retried(
    api: respx.MockRouter,
    client: CircleCIClient,
    registry: CollectorRegistry,
    load: Callable[[str], Any],
) -> None:
    api.get(PROJECT).mock(
        side_effect=[httpx.ReadTimeout("timed out"), httpx.Response(200, json=load("project.json"))]
    )
    assert (await client.get_project(SLUG)).slug == SLUG
    assert _retries(registry, "getProjectBySlug", "timeout") == 1.0
    assert _requests(registry, "getProjectBySlug", "timeout") == 1.0


@pytest.mark.anyio
async def test_connection_errors_exhaust_into_one_line_error(
    api: respx.MockRouter,
    make_client: Callable[..., CircleCIClient],
    registry: CollectorRegistry,
) -> None:
    route = api.get(PROJECT).mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
    async with make_client(max_retries=1) as client:
        with pytest.raises(TransportFailedError) as caught:
            await client.get_project(SLUG)
    assert route.call_count == 2
    assert str(caught.value) == (
        "getProjectBySlug: ConnectError after 2 attempt(s): [Errno 111] Connection refused"
    )
    assert _retries(registry, "getProjectBySlug", "connection") == 1.0
    assert _requests(registry, "getProjectBySlug", "error") == 2.0


@pytest.mark.anyio
async def test_waits_use_the_injected_sleep_not_the_limiter_slot(
    api: respx.MockRouter,
    make_client: Callable[..., CircleCIClient],
    clock: "FakeClock",
    load: Callable[[str], Any],
) -> None:
    """A 5xx backoff holds no concurrency slot: with one slot, another request gets through."""
    limiter = RateLimiter(1000.0, 1000, 1, clock=clock, sleep=clock.sleep)
    pipeline = load("pipeline.standalone.json")
    api.get("/v2/pipeline/p-1").mock(
        side_effect=[httpx.Response(500), httpx.Response(200, json=pipeline)]
    )
    api.get(PROJECT).respond(json=load("project.json"))
    order: list[str] = []

    async def slow_sleep(seconds: float) -> None:
        order.append("backoff")
        async with make_client(limiter=limiter) as other:
            await other.get_project(SLUG)
        order.append("other request done")

    async with make_client(limiter=limiter, sleep=slow_sleep) as client:
        with anyio.fail_after(5):  # sleeping inside the slot would deadlock here
            await client.get_pipeline("p-1")
    assert order == ["backoff", "other request done"]


@pytest.mark.anyio
async def test_a_stale_pooled_connection_is_resent_at_once_without_a_warning(
    api: respx.MockRouter,
    client: CircleCIClient,
    registry: CollectorRegistry,
    clock: "FakeClock",
    load: Callable[[str], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    stale = httpx.RemoteProtocolError("Server disconnected without sending a response.")
    route = api.get(PROJECT).mock(
        side_effect=[stale, httpx.Response(200, json=load("project.json"))]
    )
    with caplog.at_level(logging.DEBUG, logger="exporter.circleci"):
        assert (await client.get_project(SLUG)).slug == SLUG
    assert route.call_count == 2
    assert clock.sleeps == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert _retries(registry, "getProjectBySlug", "connection") is None


@pytest.mark.anyio
async def test_a_second_dropped_connection_is_a_counted_retry(
    api: respx.MockRouter,
    client: CircleCIClient,
    registry: CollectorRegistry,
    load: Callable[[str], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    dropped = httpx.ReadError("Connection reset by peer")
    api.get(PROJECT).mock(
        side_effect=[dropped, dropped, httpx.Response(200, json=load("project.json"))]
    )
    assert (await client.get_project(SLUG)).slug == SLUG
    assert _retries(registry, "getProjectBySlug", "connection") == 1.0
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "retrying CircleCI request"
    ]


def test_pooled_connections_expire_before_the_simulators_keep_alive() -> None:
    from exporter.circleci.client import KEEPALIVE_EXPIRY_SECONDS
    from exporter.simulator.server import SERVER_KEEP_ALIVE_SECONDS

    assert KEEPALIVE_EXPIRY_SECONDS < 5 < SERVER_KEEP_ALIVE_SECONDS  # 5 s: uvicorn's default
