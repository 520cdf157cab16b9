"""What every route handler gets: the world, the webhook registry, and a few request helpers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from exporter.simulator.faults import Faults
from exporter.simulator.model import Project
from exporter.simulator.webhooks import WebhookRegistry
from exporter.simulator.world import World


class ApiError(Exception):
    """An error answered the CircleCI way: a status code and `{"message": ...}`
    (docs/circleci-api.md §Auth and errors)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> Response:
        return JSONResponse({"message": self.message}, status_code=self.status)


PROJECT_NOT_FOUND = "Project not found."  # SPEC components.responses.404_project_not_found


@dataclass
class SimContext:
    world: World
    faults: Faults
    webhooks: WebhookRegistry
    requests: Counter[str] = field(default_factory=Counter)
    responses: Counter[str] = field(default_factory=Counter)
    # Requests that concern one project (by its slug, or the pipeline or workflow id in the
    # path): what a project costs, for the org feed's tests and bench/.
    requests_by_project: Counter[str] = field(default_factory=Counter)
    # Insights answers by request, with the refresh period they were computed in.
    insights_answers: dict[str, tuple[int, object]] = field(default_factory=dict)

    def project(self, request: Request) -> Project:
        """The project named by the `{vcs}/{org}/{repo}` path parameters, or a 404."""
        params = request.path_params
        slug = f"{params['vcs']}/{params['org']}/{params['repo']}"
        project = self.world.find_project(slug)
        if project is None:
            raise ApiError(404, PROJECT_NOT_FOUND)
        return project

    def stats(self) -> dict[str, object]:
        return {
            "requests_total": sum(self.requests.values()),
            "requests": dict(sorted(self.requests.items())),
            "responses": dict(sorted(self.responses.items())),
            "requests_by_project": dict(sorted(self.requests_by_project.items())),
        }

    def count_project_request(self, request: Request) -> None:
        params = request.path_params
        slug: str | None = None
        if "repo" in params:
            project = self.world.find_project(f"{params['vcs']}/{params['org']}/{params['repo']}")
            slug = project.slug if project is not None else None
        elif "id" in params:
            path = request.url.path
            if "/pipeline/" in path:
                pipeline = self.world.pipeline(params["id"])
                slug = pipeline.project.slug if pipeline is not None else None
            elif "/workflow/" in path:
                workflow = self.world.workflow(params["id"])
                slug = workflow.pipeline.project.slug if workflow is not None else None
        if slug is not None:
            self.requests_by_project[slug] += 1


Handler = Callable[[Request, SimContext], Awaitable[object]]


@dataclass(frozen=True)
class ApiRoute:
    path: str  # below the app root, e.g. /api/v2/workflow/{id}
    method: str
    operation_id: str  # the spec's operationId; the key for stats and faults
    handler: Handler
    presigned: bool = False  # a pre-signed URL: served without a token


def query_flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("true", "1", "yes")
