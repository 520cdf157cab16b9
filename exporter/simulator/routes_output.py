"""Step output: the pre-signed `output_url` of a v1.1 action, and the private raw output
endpoints CircleCI's own tooling reads (docs/circleci-api.md §v1.1 single job)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from exporter.simulator import steps
from exporter.simulator.context import ApiError, ApiRoute, SimContext
from exporter.simulator.serialize import iso

STEP = "/{vcs}/{org}/{repo}/{number:int}/{stream}/{index:int}/{step:int}"
PRIVATE = "/api/private/output/raw"


def _lines(request: Request, ctx: SimContext) -> list[steps.Line]:
    project = ctx.project(request)
    job = ctx.world.job(project.slug, request.path_params["number"])
    if job is None:
        raise ApiError(404, "Job not found")
    step = steps.find_step(job, request.path_params["step"])
    index = request.path_params["index"]
    if step is None or not 0 <= index < job.template.parallelism:
        raise ApiError(404, "Step not found")
    return steps.output(job, step, index, ctx.world.now())


async def get_action_output(request: Request, ctx: SimContext) -> object:
    """What the pre-signed S3 URL returns: a JSON array of `{message, time, type}`."""
    if request.path_params["stream"] != "output":
        raise ApiError(404, "Not Found")
    return [
        {"message": line.message, "time": iso(line.time), "type": line.type}
        for line in _lines(request, ctx)
    ]


async def get_private_output(request: Request, ctx: SimContext) -> Response:
    """Plain text: `output` holds the action's stdout lines, `error` its stderr lines."""
    kind = {"output": "out", "error": "err"}.get(request.path_params["stream"])
    if kind is None:
        raise ApiError(404, "Not Found")
    text = "".join(line.message for line in _lines(request, ctx) if line.type == kind)
    return PlainTextResponse(text)


ROUTES = (
    # The output_url is pre-signed: the simulator, like S3, wants no token for it.
    ApiRoute("/action-output" + STEP, "GET", "getActionOutput", get_action_output, presigned=True),
    ApiRoute(PRIVATE + STEP, "GET", "getPrivateStepOutput", get_private_output),
)
