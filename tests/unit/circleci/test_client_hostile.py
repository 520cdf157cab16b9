"""A hostile or broken API cannot stall, exhaust or leak through the client (issue 12, items 2,
4, 5, 6 and 12)."""

import json
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

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
    ResponseTooLargeError,
    TransportFailedError,
    models,
)
from exporter.circleci import client as client_module

if TYPE_CHECKING:
    from conftest import FakeClock

SLUG = "gh/acme/api"
PROJECT = f"/v2/project/{SLUG}"
PROJECT_BODY = {"slug": SLUG, "name": "api", "id": "p1"}


def _requests(registry: CollectorRegistry, code: str, endpoint: str = "getProjectBySlug") -> float:
    value = registry.get_sample_value(
        "circleci_exporter_api_requests_total", {"endpoint": endpoint, "code": code}
    )
    return value or 0.0


class _Trickle(httpx.AsyncByteStream):
    """A body sent one byte at a time, `gap` seconds apart (real time)."""

    def __init__(self, size: int, gap: float) -> None:
        self.size = size
        self.gap = gap

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"slug":"'
        for _ in range(self.size):
            await anyio.sleep(self.gap)
            yield b"x"


class _Endless(httpx.AsyncByteStream):
    """A chunked body with no end in sight (no Content-Length)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            yield b"[" * 65536
            await anyio.lowlevel.checkpoint()


@pytest.mark.anyio
async def test_a_trickling_body_hits_the_total_deadline_and_counts_as_timeout(
    api: respx.MockRouter, make_client: Callable[..., CircleCIClient], registry: CollectorRegistry
) -> None:
    # Each byte arrives well inside the per-read timeout; only a total deadline stops it.
    api.get(PROJECT).mock(side_effect=lambda _: httpx.Response(200, stream=_Trickle(1000, 0.05)))
    started = time.monotonic()
    async with make_client(timeout=0.5, max_retries=0) as client:
        with pytest.raises(TransportFailedError, match="deadline"):
            await client.get_project(SLUG)
    assert time.monotonic() - started < 3.0
    assert _requests(registry, "timeout") == 1


@pytest.mark.anyio
async def test_an_endless_chunked_body_is_cut_at_max_response_bytes(
    api: respx.MockRouter, make_client: Callable[..., CircleCIClient], registry: CollectorRegistry
) -> None:
    api.get(PROJECT).mock(side_effect=lambda _: httpx.Response(200, stream=_Endless()))
    async with make_client(max_response_bytes=1_000_000) as client:
        with pytest.raises(ResponseTooLargeError, match="1000000 bytes"):
            await client.get_project(SLUG)
    # Not retried: the same answer would come again.
    assert _requests(registry, "too_large") == 1


@pytest.mark.anyio
async def test_a_declared_oversized_body_is_refused_before_reading(
    api: respx.MockRouter, make_client: Callable[..., CircleCIClient], registry: CollectorRegistry
) -> None:
    api.get(PROJECT).respond(200, content=b"[" + b" " * 5000 + b"]")
    async with make_client(max_response_bytes=1000) as client:
        with pytest.raises(ResponseTooLargeError):
            await client.get_project(SLUG)
    assert _requests(registry, "too_large") == 1


@pytest.mark.anyio
async def test_a_large_body_is_parsed_off_the_event_loop(
    api: respx.MockRouter, client: CircleCIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed_in: list[str] = []
    validated_in: list[str] = []
    real = json.loads
    real_validate = client_module._validate

    def validate_spy(*args: object) -> object:
        import threading

        validated_in.append(threading.current_thread().name)
        return real_validate(*args)  # type: ignore[arg-type]

    def spy(data: bytes) -> object:
        import threading

        parsed_in.append(threading.current_thread().name)
        return real(data)

    monkeypatch.setattr("exporter.circleci.client.json.loads", spy)
    monkeypatch.setattr("exporter.circleci.client._validate", validate_spy)
    api.get(PROJECT).respond(200, json={**PROJECT_BODY, "bio": "x" * 10**6})
    await client.get_project(SLUG)
    assert parsed_in and parsed_in[0] != "MainThread"
    assert validated_in == parsed_in  # the model is built in the same worker thread


@pytest.mark.anyio
async def test_endless_fresh_page_tokens_stop_at_the_page_cap_and_keep_the_pages(
    api: respx.MockRouter,
    make_client: Callable[..., CircleCIClient],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    served = 0

    def page(_: httpx.Request) -> httpx.Response:
        nonlocal served
        served += 1
        return httpx.Response(200, json={"items": [], "next_page_token": f"tok{served}"})

    api.get("/v2/workflow/w1/job").mock(side_effect=page)
    async with make_client(max_pages=7) as client:
        jobs = [j async for j in client.iter_workflow_jobs("w1")]
    assert jobs == [] and served == 7
    hits = registry.get_sample_value(
        "circleci_exporter_api_page_limit_hits_total", {"endpoint": "listWorkflowJobs"}
    )
    assert hits == 1
    assert any("page limit" in r.getMessage() for r in caplog.records)


TOKEN_FORMS = {
    "raw": lambda t: t,
    "repr": lambda t: repr(t),
    "bytes": lambda t: repr(t.encode()),
    "url-encoded": lambda t: quote(t, safe=""),
    "form-encoded": lambda t: quote_plus(t),
}


@pytest.mark.parametrize("form", sorted(TOKEN_FORMS))
@pytest.mark.anyio
async def test_the_token_is_redacted_from_errors_in_every_encoding(
    api: respx.MockRouter, make_client: Callable[..., CircleCIClient], form: str
) -> None:
    from pydantic import SecretStr

    # A token as a Kubernetes Secret often hands it over: with a trailing newline.
    odd_token = "CCIPAT_ab+c/d=e&f~g'h\n"
    echoed = TOKEN_FORMS[form](odd_token)
    api.get(PROJECT).mock(side_effect=httpx.ConnectError(f"refused for {echoed}"))
    async with make_client(max_retries=0) as client:
        client_with_odd_token = CircleCIClient(
            "https://circleci.com/api",
            SecretStr(odd_token),
            limiter=client._limiter,
            telemetry=client._telemetry,
            max_retries=0,
        )
        async with client_with_odd_token:
            with pytest.raises(TransportFailedError) as caught:
                await client_with_odd_token.get_project(SLUG)
    text = str(caught.value)
    assert "***" in text
    assert "CCIPAT_ab" not in text
    for make in TOKEN_FORMS.values():
        assert make(odd_token).strip("'\"b") not in text


def _until(registry: CollectorRegistry, reason: str) -> float | None:
    return registry.get_sample_value(
        "circleci_exporter_rate_limited_until_timestamp_seconds", {"reason": reason}
    )


@pytest.mark.anyio
async def test_a_huge_retry_after_pauses_at_most_300_s_and_shows_in_the_gauge(
    api: respx.MockRouter,
    make_client: Callable[..., CircleCIClient],
    clock: "FakeClock",
    registry: CollectorRegistry,
) -> None:
    api.get(PROJECT).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "999999"}),
            httpx.Response(200, json=PROJECT_BODY),
        ]
    )
    async with make_client(backoff=Backoff(rng=random.Random(1))) as client:
        assert _until(registry, "429") == 0
        before = time.time()
        await client.get_project(SLUG)
    assert clock.sleeps == [300.0]
    until = _until(registry, "429")
    assert until is not None and before + 299 <= until <= time.time() + 301


@pytest.mark.anyio
async def test_consecutive_connection_failures_open_the_circuit_breaker_for_everyone(
    api: respx.MockRouter,
    clock: "FakeClock",
    telemetry: object,
    registry: CollectorRegistry,
) -> None:
    from pydantic import SecretStr

    api.get(PROJECT).mock(side_effect=httpx.ConnectError("connection refused"))
    limiter = RateLimiter(1000.0, 1000, 16, clock=clock, sleep=clock.sleep)
    client = CircleCIClient(
        "https://circleci.com/api",
        SecretStr("t"),
        limiter=limiter,
        telemetry=telemetry,  # type: ignore[arg-type]
        max_retries=0,
        breaker_failures=3,
        breaker_max_pause=60.0,
        sleep=clock.sleep,
    )
    async with client:
        for _ in range(2):
            with pytest.raises(TransportFailedError):
                await client.get_project(SLUG)
        assert _until(registry, "circuit_breaker") == 0
        slept = len(clock.sleeps)
        with pytest.raises(TransportFailedError):
            await client.get_project(SLUG)
        assert (_until(registry, "circuit_breaker") or 0) > time.time()
        # The next request of any project waits for the breaker's pause first.
        with pytest.raises(TransportFailedError):
            await client.get_project(SLUG)
        first_pause = clock.sleeps[slept]
        assert first_pause > 0
        # Still failing: the pause doubles, capped at breaker_max_pause.
        with pytest.raises(TransportFailedError):
            await client.get_project(SLUG)
        assert clock.sleeps[-1] == pytest.approx(2 * first_pause)
        for _ in range(8):
            with pytest.raises(TransportFailedError):
                await client.get_project(SLUG)
        assert max(clock.sleeps) <= 60.0


@pytest.mark.anyio
async def test_an_answer_closes_the_circuit_breaker(
    api: respx.MockRouter, clock: "FakeClock", telemetry: object
) -> None:
    from pydantic import SecretStr

    answers = (
        [httpx.ConnectError("down")] * 3 + [httpx.Response(500)] + [httpx.ConnectError("down")] * 2
    )
    api.get(PROJECT).mock(side_effect=answers)
    limiter = RateLimiter(1000.0, 1000, 16, clock=clock, sleep=clock.sleep)
    client = CircleCIClient(
        "https://circleci.com/api", SecretStr("t"), limiter=limiter,
        telemetry=telemetry, max_retries=0, breaker_failures=3, sleep=clock.sleep,  # type: ignore[arg-type]
    )  # fmt: skip
    async with client:
        for _ in range(3):
            with pytest.raises(TransportFailedError):
                await client.get_project(SLUG)
        paused = len(clock.sleeps)
        with pytest.raises(ApiStatusError):
            await client.get_project(SLUG)  # the 500 answer: the API is reachable again
        for _ in range(2):
            with pytest.raises(TransportFailedError):
                await client.get_project(SLUG)
        # Two failures after an answer stay under the threshold of three: no new pause.
        assert len(clock.sleeps) == paused + 1


@pytest.mark.anyio
async def test_a_pipeline_list_read_has_its_own_page_cap(
    api: respx.MockRouter, client: CircleCIClient, registry: CollectorRegistry
) -> None:
    served = 0

    def page(_: httpx.Request) -> httpx.Response:
        nonlocal served
        served += 1
        return httpx.Response(200, json={"items": [], "next_page_token": f"tok{served}"})

    api.get(f"{PROJECT}/pipeline").mock(side_effect=page)
    pages = [p async for p in client.iter_project_pipeline_pages(SLUG, max_pages=3)]
    assert len(pages) == served == 3
    hits = registry.get_sample_value(
        "circleci_exporter_api_page_limit_hits_total", {"endpoint": "listPipelinesForProject"}
    )
    assert hits == 1


# A lone surrogate reaches a str through json.loads as an escape, or as its own UTF-8 bytes
# (bytes are decoded with "surrogatepass"), or in a UTF-16 body; the client cleans each.
_LONE_SURROGATE_BODIES = {
    "escaped": b'{"slug": "gh/acme/api", "name": "api\\ud800", "id": "p1",'
    b' "vcs_info": {"default_branch": "main\\udfff"}}',
    "raw utf-8 bytes": b'{"slug": "gh/acme/api", "name": "api\xed\xa0\x80", "id": "p1",'
    b' "vcs_info": {"default_branch": "main\xed\xbf\xbf"}}',
    "utf-16": '{"slug": "gh/acme/api", "name": "api\ud800", "id": "p1",'
    ' "vcs_info": {"default_branch": "main\udfff"}}'.encode("utf-16-le", "surrogatepass"),
}


@pytest.mark.anyio
@pytest.mark.parametrize("spelling", list(_LONE_SURROGATE_BODIES))
async def test_lone_surrogates_in_a_response_become_replacement_characters(
    api: respx.MockRouter, client: CircleCIClient, spelling: str
) -> None:
    api.get(PROJECT).respond(200, content=_LONE_SURROGATE_BODIES[spelling])
    project = await client.get_project(SLUG)
    assert project.name == "api\ufffd"
    assert project.vcs_info.default_branch == "main\ufffd"


@pytest.mark.anyio
async def test_a_valid_escaped_surrogate_pair_survives_and_nulls_still_mean_absent(
    api: respx.MockRouter, client: CircleCIClient
) -> None:
    body = b'{"slug": "gh/acme/api", "name": "api \\ud83d\\ude80", "id": "p1", "vcs_info": null}'
    api.get(PROJECT).respond(200, content=body)
    project = await client.get_project(SLUG)
    assert project.name == "api \U0001f680"
    assert project.vcs_info.default_branch is None


def test_only_json_that_cannot_hold_a_lone_surrogate_counts_as_clean() -> None:
    assert models.json_text_is_clean('{"name": "caf\u00e9 \\n \\\\u0041"}'.encode())
    assert not any(models.json_text_is_clean(body) for body in _LONE_SURROGATE_BODIES.values())
