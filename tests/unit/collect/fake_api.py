"""A small in-memory CircleCI for one project, for unit tests of the collectors: just the
endpoints polling reads, served through httpx.MockTransport, with injectable failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from exporter.circleci import ApiTelemetry, CircleCIClient, Priority, RateLimiter
from exporter.circleci.ratelimit import current_priority

SLUG = "gh/acme/api"


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


class FakeCircleCI:
    """One project (default branch `main`): pipelines newest first, `page_size` a page;
    workflows per pipeline id; jobs per workflow id. A request whose path contains one of
    `failing` answers HTTP 500. Every request path (without query) is recorded, and the
    priority it was sent at."""

    def __init__(self, page_size: int = 20) -> None:
        self.page_size = page_size
        self.pipelines: list[dict[str, Any]] = []
        self.workflows: dict[str, list[dict[str, Any]]] = {}
        self.jobs: dict[str, list[dict[str, Any]]] = {}
        self.failing: set[str] = set()
        self.requests: list[str] = []
        self.priorities: list[Priority] = []
        # The org feed (`GET /pipeline`): this project's pipelines while the token's user
        # follows it, and other projects' (`elsewhere`), newest first.
        self.followed = True
        self.elsewhere: list[dict[str, Any]] = []

    # -- the world ----------------------------------------------------------------------

    def pipeline(self, pipeline_id: str, created: float, *, state: str = "created",
                 branch: str = "main", errors: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
        """A new pipeline, on top of the list."""
        pipeline = {
            "id": pipeline_id,
            "number": len(self.pipelines) + 1,
            "project_slug": SLUG,
            "created_at": iso(created),
            "updated_at": iso(created),
            "state": state,
            "errors": [{"type": e, "message": "boom"} for e in errors],
            "trigger": {"type": "webhook"},
            "vcs": {"branch": branch},
        }
        self.pipelines.insert(0, pipeline)
        self.workflows.setdefault(pipeline_id, [])
        return pipeline

    def other(self, pipeline_id: str, created: float, project: str = "gh/acme/web") -> None:
        """A pipeline of another project of the org: only the feed shows it."""
        self.elsewhere.append({**self.pipeline(pipeline_id, created), "project_slug": project})
        self.pipelines.pop(0)

    def workflow(self, pipeline_id: str, workflow_id: str, status: str, created: float,
                 stopped: float | None = None, name: str = "build") -> dict[str, Any]:  # fmt: skip
        pipeline = next(p for p in self.pipelines if p["id"] == pipeline_id)
        workflow = {
            "id": workflow_id,
            "name": name,
            "pipeline_id": pipeline_id,
            "pipeline_number": pipeline["number"],
            "project_slug": SLUG,
            "status": status,
            "created_at": iso(created),
            "stopped_at": iso(stopped) if stopped is not None else None,
        }
        self.workflows[pipeline_id].append(workflow)
        self.jobs.setdefault(workflow_id, [])
        return workflow

    def job(self, workflow_id: str, job_id: str, status: str, *, number: int | None = None,
            started: float | None = None, stopped: float | None = None, name: str = "test",
            type: str = "build") -> dict[str, Any]:  # fmt: skip
        job = {
            "id": job_id,
            "name": name,
            "type": type,
            "status": status,
            "job_number": number,
            "started_at": iso(started) if started is not None else None,
            "stopped_at": iso(stopped) if stopped is not None else None,
        }
        self.jobs[workflow_id].append(job)
        return job

    # -- the API ------------------------------------------------------------------------

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/v2")
        self.requests.append(path)
        self.priorities.append(current_priority())
        if any(fragment in path for fragment in self.failing):
            return httpx.Response(500, json={"message": "internal error"})
        if path == f"/project/{SLUG}":
            return httpx.Response(200, json={"slug": SLUG, "name": "api", "id": "p-1",
                                             "organization_name": "acme",
                                             "vcs_info": {"default_branch": "main"}})  # fmt: skip
        if path == f"/project/{SLUG}/pipeline":
            branch = request.url.params.get("branch")
            items = [p for p in self.pipelines if branch in (None, p["vcs"]["branch"])]
            return self._page(items, request)
        if path == "/pipeline":
            feed = [*(self.pipelines if self.followed else []), *self.elsewhere]
            feed.sort(key=lambda p: p["created_at"], reverse=True)
            return self._page(feed, request)
        parts = path.strip("/").split("/")
        if parts[0] == "pipeline" and parts[2:] == ["workflow"]:
            return self._page(self.workflows.get(parts[1], []), request)
        if parts[0] == "workflow" and parts[2:] == ["job"]:
            return self._page(self.jobs.get(parts[1], []), request)
        return httpx.Response(404, json={"message": "Not found"})

    def _page(self, items: list[dict[str, Any]], request: httpx.Request) -> httpx.Response:
        start = int(request.url.params.get("page-token") or 0)
        end = start + self.page_size
        next_token = str(end) if end < len(items) else None
        return httpx.Response(200, json={"items": items[start:end], "next_page_token": next_token})

    def reads(self) -> list[str]:
        """The request paths since the last call."""
        done, self.requests = self.requests, []
        return done


@asynccontextmanager
async def client_for(api: FakeCircleCI) -> AsyncIterator[CircleCIClient]:
    async with CircleCIClient(
        "https://circleci.example/api",
        None,
        limiter=RateLimiter(1000, 1000, 4),
        telemetry=ApiTelemetry(CollectorRegistry()),
        transport=httpx.MockTransport(api.handler),
        max_retries=0,
    ) as client:
        yield client
