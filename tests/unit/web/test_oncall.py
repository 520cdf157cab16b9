"""The on-call page, /api/v1/failures and the log tail: what they show, the fallback order of
log sources, the cache bound, escaping and the 404s. CircleCI is an httpx.MockTransport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from exporter.circleci import ApiTelemetry, CircleCIClient, RateLimiter
from exporter.collect.events import EVENT_TYPES
from exporter.collect.step_logs import StepLogs, StepLogTelemetry, clean_lines
from exporter.state import Buckets, State
from exporter.state.snapshot import FailedStep
from exporter.state.updates import (
    FailedStepUpdate,
    JobUpdate,
    ProjectUpdate,
    WorkflowUpdate,
)
from exporter.web.app import create_app
from exporter.web.publisher import Publisher
from exporter.web.webhooks import WebhookReceiver, WebhookTelemetry, webhook_app
from exporter.webhook_outcome import EventOutcome

pytestmark = pytest.mark.anyio

P, B, W = "gh/acme/api", "main", "build-and-test"
T0 = 1.8e9
S3 = "https://s3.example/output/1"
JOB_URL = "https://app.circleci.com/pipelines/github/acme/api/7/workflows/w2/jobs/42"
HOSTILE = "\x1b[31mE   <script>alert('x')</script> & done\x1b[0m\r\n"


@dataclass
class FakeCircleCI:
    """The step output sources; `presigned_status` != 200 makes the output_url fail."""

    presigned_status: int = 200
    lines: list[str] = field(default_factory=lambda: ["build ok\r\n", HOSTILE, "Exited 1\r\n"])
    seen: list[tuple[str, str | None]] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((str(request.url), request.headers.get("circle-token")))
        if request.url.host == "s3.example":
            if self.presigned_status != 200:
                expired = "<Error>Request has expired</Error>"
                return httpx.Response(self.presigned_status, text=expired)
            at = "2026-01-01T00:00:00Z"
            body = [{"message": m, "time": at, "type": "out"} for m in self.lines]
            return httpx.Response(200, json=body)
        if "/private/output/raw/" in request.url.path:
            stream = request.url.path.split("/")[-3]
            text = "".join(self.lines) if stream == "output" else "stderr line\n"
            return httpx.Response(200, text=text)
        return httpx.Response(404, json={"message": "Not Found"})


def _state(*, step_known: bool = True) -> State:
    state = State(watch_start=T0, buckets=Buckets((60.0,), (60.0,), (5.0,)), series_ttl=1e6)
    state.apply(ProjectUpdate(P, "api", "acme", B, "https://app.circleci.com/projects/x"))
    state.apply(ProjectUpdate("gh/acme/web", "web", "acme", B, "https://app.circleci.com/p"))
    for run, status, at in (("w1", "failed", T0 + 10), ("w2", "failed", T0 + 200)):
        state.apply(
            WorkflowUpdate(
                P, B, W, run, 7, status, at, at + 100, f"https://app.circleci.com/wf/{run}"
            )
        )
    state.apply(
        JobUpdate(P, B, W, "w2", "unit-tests", "j42", 42, "failed", T0 + 210, T0 + 210,
                  T0 + 290, JOB_URL)
    )  # fmt: skip
    state.apply(
        JobUpdate(P, B, W, "w2", "lint", "j43", 43, "success", T0 + 210, T0 + 210, T0 + 250,
                  "https://app.circleci.com/jobs/43")
    )  # fmt: skip
    state.apply(
        FailedStepUpdate(P, B, W, "unit-tests", "j42", 42, "Run unit tests" if step_known else "",
                         103 if step_known else None, 0 if step_known else None, "a-0",
                         S3 if step_known else None)
    )  # fmt: skip
    state.record_success(P, "live", T0 + 300)
    state.record_failure("gh/acme/web", "live", "getProjectBySlug: HTTP 404: Project not found")
    state.record_success("gh/acme", "insights", T0 + 300)
    return state


@dataclass
class Rig:
    http: httpx.AsyncClient
    api: FakeCircleCI
    registry: CollectorRegistry
    logs: StepLogs | None

    def requests(self, endpoint: str, code: str) -> float:
        value = self.registry.get_sample_value(
            "circleci_exporter_api_requests_total", {"endpoint": endpoint, "code": code}
        )
        return value or 0.0


async def _rig(api: FakeCircleCI, *, logs: bool = True, step_known: bool = True,
               max_entries: int = 64, max_bytes: int = 1 << 20) -> AsyncIterator[Rig]:  # fmt: skip
    registry = CollectorRegistry(auto_describe=False)
    state = _state(step_known=step_known)
    publisher = Publisher(state, {"live": 30.0}, clock=lambda: T0 + 400)
    async with CircleCIClient(
        "https://circleci.example/api",
        None,
        limiter=RateLimiter(1000, 1000, 4),
        telemetry=ApiTelemetry(registry),
        transport=httpx.MockTransport(api.handler),
        max_retries=0,
    ) as client:
        step_logs = (
            StepLogs(
                client,
                telemetry=StepLogTelemetry(registry),
                max_entries=max_entries,
                max_bytes=max_bytes,
            )
            if logs
            else None
        )
        app = create_app(
            publisher=publisher, registry=registry, ready=lambda: True, logs=step_logs, demo=True
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as http:
            yield Rig(http, api, registry, step_logs)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async for value in _rig(FakeCircleCI()):
        yield value


async def test_page_shows_the_red_branch_its_failing_step_and_escaped_log(rig: Rig) -> None:
    response = await rig.http.get("/")
    assert response.status_code == 200
    page = response.text
    assert 'http-equiv="refresh"' in page
    assert "<script" not in page  # no script of ours, and the log's is text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; done" in page
    assert "\x1b" not in page
    red = page[page.index('<table id="red">') : page.index("</table>")]
    assert 'class="red"' in red and "<strong>api</strong>" in red
    assert "Run unit tests" in red and "unit-tests #42" in red
    assert f'href="{JOB_URL}"' in red and 'href="https://app.circleci.com/wf/w2"' in red
    assert "<details open>" in red and "Exited 1" in red
    assert '<td class="streak">2</td>' in red
    assert "Demo mode" in page
    health = page[page.index('id="health"') :]
    assert "getProjectBySlug: HTTP 404" in health
    assert 'id="org-health"' in page and "gh/acme</span>" in page
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


async def test_json_has_the_same_data(rig: Rig) -> None:
    body = (await rig.http.get("/api/v1/failures")).json()
    [red] = body["red_default_branches"]
    assert (red["project"], red["project_name"], red["workflow"], red["streak"]) == (P, "api", W, 2)
    assert red["since"] == T0 + 110  # the first failed run's stop
    [job] = red["failing_jobs"]
    assert (job["job"], job["job_number"], job["step"], job["url"]) == (
        "unit-tests",
        42,
        "Run unit tests",
        JOB_URL,
    )
    assert job["log_lines"][-2] == "E   <script>alert('x')</script> & done"  # JSON: raw text
    assert job["log_url"] == f"/failures/{P}/42/log"
    assert [o["key"] for o in body["collection"]["orgs"]] == ["gh/acme"]
    assert body["collection"]["projects"][0]["key"] == "gh/acme/web"  # down first


async def test_log_tail_is_fetched_once_escaped_and_without_the_token(rig: Rig) -> None:
    for _ in range(3):
        response = await rig.http.get(f"/failures/{P}/42/log", params={"lines": 2})
        assert response.status_code == 200
    assert "&lt;script&gt;" in response.text and "<script>" not in response.text
    assert "build ok" not in response.text  # only the last 2 lines
    assert rig.requests("getActionOutput", "200") == 1
    assert rig.api.seen == [(S3, None)]


async def test_expired_output_url_falls_back_to_the_private_endpoints() -> None:
    async for rig in _rig(FakeCircleCI(presigned_status=403)):
        response = await rig.http.get(f"/failures/{P}/42/log")
        assert response.status_code == 200
        assert "Exited 1" in response.text and "stderr line" in response.text
        assert response.text.index("Exited 1") < response.text.index("stderr line")
        assert rig.requests("getActionOutput", "403") == 1
        assert rig.requests("getPrivateStepOutput", "200") == 2
        paths = [url for url, _ in rig.api.seen[1:]]
        assert paths == [
            f"https://circleci.example/api/private/output/raw/{P}/42/output/0/103",
            f"https://circleci.example/api/private/output/raw/{P}/42/error/0/103",
        ]


@pytest.mark.parametrize(
    "path",
    [
        "/failures/gh/acme/unknown/42/log",  # not a tracked project
        "/failures/gh/acme/web/42/log",  # tracked, but not its job
        f"/failures/{P}/43/log",  # a job of the project that did not fail
        f"/failures/{P}/999/log",  # no such job
        f"/failures/{P}/abc/log",
        "/failures/../../etc/passwd/1/log",
    ],
)
async def test_anything_but_a_current_failure_of_a_tracked_project_is_404(
    rig: Rig, path: str
) -> None:
    assert (await rig.http.get(path)).status_code == 404
    assert rig.api.seen == []


async def test_logs_switched_off_means_404_and_no_log_on_the_page() -> None:
    async for rig in _rig(FakeCircleCI(), logs=False):
        assert (await rig.http.get(f"/failures/{P}/42/log")).status_code == 404
        page = (await rig.http.get("/")).text
        assert "Run unit tests" in page and "no log" in page
        assert rig.api.seen == []


async def test_fallback_step_keeps_the_job_link_and_serves_no_log() -> None:
    async for rig in _rig(FakeCircleCI(), step_known=False):
        page = (await rig.http.get("/")).text
        assert f'href="{JOB_URL}"' in page and "step unknown" in page
        assert (await rig.http.get(f"/failures/{P}/42/log")).status_code == 404
        assert rig.api.seen == []


async def test_the_webhook_listener_serves_no_on_call_route() -> None:
    receiver = WebhookReceiver(
        [SecretStr("s3cret")],
        apply=lambda event: EventOutcome.IGNORED,
        event_types=EVENT_TYPES,
        on_applied=lambda: None,
        telemetry=WebhookTelemetry(CollectorRegistry(), EVENT_TYPES),
    )
    transport = httpx.ASGITransport(app=webhook_app(receiver))
    async with httpx.AsyncClient(transport=transport, base_url="http://hooks") as http:
        for path in (f"/failures/{P}/42/log", "/", "/api/v1/failures"):
            assert (await http.get(path)).status_code == 404


def _step(number: int) -> FailedStep:
    return FailedStep(number, JOB_URL, "Run", 103, 0, "a", f"https://s3.example/output/{number}")


def _evictions(registry: CollectorRegistry, reason: str) -> float:
    value = registry.get_sample_value(
        "circleci_exporter_step_log_cache_evictions_total", {"reason": reason}
    )
    return value or 0.0


async def test_the_cache_is_bounded_in_entries_and_bytes() -> None:
    api = FakeCircleCI(lines=["x" * 99 + "\n"] * 10)  # 1000 bytes per log
    registry = CollectorRegistry()
    telemetry = StepLogTelemetry(registry)
    async with CircleCIClient(
        "https://circleci.example/api", None, limiter=RateLimiter(1000, 1000, 4),
        telemetry=ApiTelemetry(CollectorRegistry()), transport=httpx.MockTransport(api.handler),
    ) as client:  # fmt: skip
        logs = StepLogs(client, telemetry=telemetry, max_entries=3, max_bytes=2500)
        for number in (1, 2, 3):
            await logs.tail(P, _step(number))
        assert logs.cached == (2, 2000)  # bytes bound: the oldest went
        assert _evictions(registry, "bytes") == 1
        await logs.tail(P, _step(3))
        assert len(api.seen) == 3  # a hit
        await logs.tail(P, _step(1))
        assert len(api.seen) == 4  # evicted, fetched again

        logs = StepLogs(client, telemetry=telemetry, max_entries=2, max_bytes=1 << 20)
        for number in (1, 2, 3):
            await logs.tail(P, _step(number))
        assert logs.cached == (2, 2000)  # entries bound
        assert _evictions(registry, "entries") == 1

        tiny = StepLogs(client, telemetry=telemetry, max_entries=2, max_bytes=500)
        tail = await tiny.tail(P, _step(1))
        assert len(tail.lines) == 10 and tiny.cached == (0, 0)  # served, never kept
        assert _evictions(registry, "too_large") == 1


async def test_concurrent_readers_of_one_log_cost_one_request() -> None:
    api = FakeCircleCI()
    async with CircleCIClient(
        "https://circleci.example/api", None, limiter=RateLimiter(1000, 1000, 4),
        telemetry=ApiTelemetry(CollectorRegistry()), transport=httpx.MockTransport(api.handler),
    ) as client:  # fmt: skip
        logs = StepLogs(client, telemetry=StepLogTelemetry(CollectorRegistry()))
        results: list[tuple[str, ...]] = []

        async def read() -> None:
            results.append((await logs.tail(P, _step(7))).lines)

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(read)
        assert len(results) == 5 and len(set(results)) == 1
        assert len(api.seen) == 1


def test_ansi_and_carriage_returns_are_cleaned() -> None:
    text = "\x1b[1;32mok\x1b[0m\r\n10%\r50%\r100%\n\x1b]8;;http://x\x07link\x1b]8;;\x07\n"
    assert clean_lines(text) == ["ok", "100%", "link"]
    assert json.dumps(clean_lines("a\x00b\n")) == '["ab"]'
