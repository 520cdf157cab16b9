"""The exporter's parts as the composition root wires them (a real State, live collector and
receiver), whose CircleCI API is a small in-memory fake (httpx.MockTransport), and an ASGI
client that posts signed events to it."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from exporter.collect.project import ProjectCollector
from exporter.components import build_components
from exporter.settings import load_settings
from exporter.simulator import sign
from exporter.state import State
from exporter.web.app import create_app
from exporter.web.webhooks import WebhookReceiver

SECRET = "hunter123"
OAUTH = "gh/circleci/webhook-service"
STANDALONE = "circleci/DdaVtNusHqi24D4YT3X4eu/6EkDPZoN4ZdMKKZtBkRodt"
ENDPOINT = "/webhooks/circleci"
TEN_YEARS = 10 * 365 * 86400.0


@dataclass
class FakeApi:
    """Answers the polling endpoints for the two sample projects (default branch `main`);
    `pipelines`, `workflows`, `jobs` are what polling will see. Records every request path."""

    pipelines: list[dict[str, Any]] = field(default_factory=list)
    workflows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    jobs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/v2")
        self.requests.append(path)
        parts = path.strip("/").split("/")
        if parts[0] == "project" and len(parts) == 4:
            slug = "/".join(parts[1:])
            return httpx.Response(200, json=_project(slug))
        if parts[0] == "project" and parts[-1] == "pipeline":
            branch = request.url.params.get("branch")
            items = [p for p in self.pipelines if branch in (None, p["vcs"]["branch"])]
            return httpx.Response(200, json={"items": items, "next_page_token": None})
        if parts[0] == "pipeline" and parts[-1] == "workflow":
            items = self.workflows.get(parts[1], [])
            return httpx.Response(200, json={"items": items, "next_page_token": None})
        if parts[0] == "workflow" and parts[-1] == "job":
            items = self.jobs.get(parts[1], [])
            return httpx.Response(200, json={"items": items, "next_page_token": None})
        if parts[0] == "project" and parts[-2] == "job":
            return httpx.Response(200, json=_job_details(int(parts[-1])))
        if parts[0] == "project" and parts[-1] == "tests":
            tests = [{"message": "", "source": "junit", "run_time": 0.5, "file": "a_test.py",
                      "result": r, "name": f"t{i}", "classname": "A"}
                     for i, r in enumerate(["success", "success", "failure"])]  # fmt: skip
            return httpx.Response(200, json={"items": tests, "next_page_token": None})
        return httpx.Response(404, json={"message": "Not found"})

    def count(self, suffix: str) -> int:
        return sum(1 for path in self.requests if path.endswith(suffix))


def _project(slug: str) -> dict[str, Any]:
    return {
        "slug": slug,
        "name": slug.rsplit("/", 1)[-1],
        "id": "84996744-a854-4f5e-aea3-04e2851dc1d2",
        "organization_name": "circleci",
        "organization_slug": slug.rsplit("/", 1)[0],
        "organization_id": "f22b6566-597d-46d5-ba74-99ef5bb3d85c",
        "vcs_info": {"vcs_url": "https://example.com", "provider": "GitHub",
                     "default_branch": "main"},
    }  # fmt: skip


def _job_details(number: int) -> dict[str, Any]:
    return {
        "number": number,
        "name": "test",
        "web_url": f"https://circleci.com/gh/circleci/webhook-service/{number}",
        "status": "success",
        "parallelism": 1,
        "created_at": "2021-09-01T22:49:03.616Z",
        "queued_at": "2021-09-01T22:49:20.841Z",
        "started_at": "2021-09-01T22:49:28.841Z",
        "stopped_at": "2021-09-01T22:49:34.170Z",
        "duration": 5329,
        "executor": {"resource_class": "medium", "type": "docker"},
        "parallel_runs": [{"index": 0, "status": "success"}],
        "project": {"id": "p", "slug": OAUTH, "name": "webhook-service", "external_url": "x"},
        "pipeline": {"id": "1285fe1d-d3a6-44fc-8886-8979558254c4"},
        "latest_workflow": {"id": "fda08377-fe7e-46b1-8992-3a7aaecac9c3", "name": "welcome"},
        "organization": {"name": "circleci"},
        "contexts": [],
        "messages": [],
    }


@dataclass
class Harness:
    state: State
    api: FakeApi
    collectors: dict[str, ProjectCollector]
    receiver: WebhookReceiver
    registry: CollectorRegistry
    http: httpx.AsyncClient
    published: list[int]

    async def read_projects(self) -> None:
        """One polling cycle of every project: after it, their branch policies are known."""
        for collector in self.collectors.values():
            await collector.cycle()

    async def post(
        self,
        payload: dict[str, Any] | bytes,
        *,
        secret: str | None = SECRET,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        sent = {"content-type": "application/json"}
        if isinstance(payload, dict) and isinstance(payload.get("type"), str):
            sent["circleci-event-type"] = payload["type"]
        if secret is not None:
            sent["circleci-signature"] = sign(body, secret)
        sent.update(headers or {})
        return await self.http.post(ENDPOINT, content=body, headers=sent)

    def events(self, event: str, outcome: str) -> float:
        value = self.registry.get_sample_value(
            "circleci_exporter_webhook_events_total", {"event": event, "outcome": outcome}
        )
        return value or 0.0


async def make_harness(
    *,
    secrets: tuple[str, ...] = (SECRET,),
    defaults: dict[str, Any] | None = None,
    api: FakeApi | None = None,
    sharding: dict[str, Any] | None = None,
) -> AsyncIterator[Harness]:
    """`defaults`: the `defaults:` branch rules of both projects; `sharding`: this exporter's
    `sharding:` section (default: unsharded)."""
    api = api or FakeApi()
    settings = load_settings(
        None,
        {
            "api": {"url": "https://circleci.example/api", "requests_per_second": 1000,
                    "burst": 1000, "max_concurrency": 4, "max_retries": 0},
            "projects": [{"slug": OAUTH}, {"slug": STANDALONE}],
            "defaults": defaults or {},
            "collect": {"lookback": TEN_YEARS, "series_ttl": TEN_YEARS},
            "webhooks": {"secret": ",".join(secrets)},
            "sharding": sharding or {},
        },
    )  # fmt: skip
    published: list[int] = []
    parts = build_components(
        settings, transport=httpx.MockTransport(api.handler), clock=lambda: 1.9e9, watch_start=0.0
    )
    async with parts:
        receiver = parts.webhooks
        assert receiver is not None
        receiver.on_applied = lambda: published.append(1)
        app = create_app(
            publisher=parts.publisher,
            registry=parts.registry,
            ready=lambda: True,
            webhooks=receiver,
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as http:
            yield Harness(
                parts.state, api, parts.live.projects, receiver, parts.registry, http, published
            )


def with_changes(payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of a payload with keys replaced; `__` separates levels
    (`workflow__status="failed"`)."""
    result = copy.deepcopy(payload)
    for dotted, value in changes.items():
        target = result
        *parents, last = dotted.split("__")
        for key in parents:
            target = target[key]
        target[last] = value
    return result
