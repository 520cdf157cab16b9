"""User, project, pipeline, workflow and job endpoints
(docs/circleci-api.md §Users and projects to §Test results, §Schedules, §v1.1 single job)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import datetime
from itertools import dropwhile

from starlette.requests import Request

from exporter.simulator import serialize, steps
from exporter.simulator.context import ApiError, ApiRoute, SimContext, query_flag
from exporter.simulator.model import Job, Pipeline
from exporter.simulator.pagination import (
    PAGE_SIZE,
    InvalidPageToken,
    decode_token,
    encode_token,
    offset_page,
    page_body,
    take_page,
)
from exporter.simulator.pipeline_config import pipeline_config

V2 = "/api/v2"
FEED_PROJECT_WINDOW = 250
PROJECT = V2 + "/project/{vcs}/{org}/{repo}"


async def get_current_user(request: Request, ctx: SimContext) -> object:
    return serialize.user(ctx.world.me)


async def get_user(request: Request, ctx: SimContext) -> object:
    """Resolves the ids runs name: `started_by`, `approved_by`, `canceled_by`."""
    found = ctx.world.user(request.path_params["id"])
    if found is None:
        raise ApiError(404, "User not found")
    return serialize.user(found)


async def get_collaborations(request: Request, ctx: SimContext) -> object:
    # A bare array, not a page (docs/circleci-api.md §Users and projects).
    return [serialize.collaboration(org) for org in ctx.world.organizations]


async def get_project(request: Request, ctx: SimContext) -> object:
    return serialize.project(ctx.project(request))


async def list_project_pipelines(request: Request, ctx: SimContext) -> object:
    project = ctx.project(request)
    now = ctx.world.sync()
    branch = request.query_params.get("branch")
    timeline = ctx.world.timeline(project.slug)
    pipelines = timeline.by_branch.get(branch, []) if branch else timeline.pipelines
    return _newest_first(request, pipelines, f"pipelines:{project.slug}:{branch or ''}", now)


async def list_my_pipelines(request: Request, ctx: SimContext) -> object:
    """The project's pipelines the token's user triggered."""
    project = ctx.project(request)
    now = ctx.world.sync()
    me = ctx.world.me
    mine = [p for p in ctx.world.timeline(project.slug).pipelines if p.actor == me]
    return _newest_first(request, mine, f"mine:{project.slug}", now)


def _newest_first(
    request: Request, pipelines: Sequence[Pipeline], scope: str, now: datetime
) -> object:
    """A page of `pipelines` (oldest first), newest first. The token remembers the last number
    served, so pipelines that arrive while a client pages never shift the pages it has yet to
    read."""
    end = len(pipelines)
    token = request.query_params.get("page-token")
    if token:
        before = decode_token(token, scope)
        if not isinstance(before, int):
            raise InvalidPageToken(token)
        end = bisect.bisect_left(pipelines, before, key=lambda p: p.number)
    page = pipelines[max(0, end - PAGE_SIZE) : end][::-1]
    next_token = encode_token(scope, page[-1].number) if end > PAGE_SIZE else None
    return page_body([serialize.pipeline(p, now) for p in page], next_token)


async def get_pipeline_by_number(request: Request, ctx: SimContext) -> object:
    project = ctx.project(request)
    now = ctx.world.sync()
    pipelines = ctx.world.timeline(project.slug).pipelines
    number = request.path_params["number"]
    i = bisect.bisect_left(pipelines, number, key=lambda p: p.number)
    if i == len(pipelines) or pipelines[i].number != number:
        raise ApiError(404, "Pipeline not found")
    return serialize.pipeline(pipelines[i], now)


async def list_org_pipelines(request: Request, ctx: SimContext) -> object:
    world = ctx.world
    now = world.sync()
    org_slug = request.query_params.get("org-slug")
    # The feed shows only projects the user follows, and of those the 250 most recently built
    # (spec: "the most recently built projects (max 250) you follow"; docs/circleci-api.md
    # §Pipelines).
    projects = world.followed
    if org_slug:
        if world.organization(org_slug) is None:
            raise ApiError(404, "Organization not found")
        members = world.projects_of(org_slug)
        projects = [p for p in projects if p in members]
    projects = world.most_recently_built(projects, FEED_PROJECT_WINDOW)
    mine = query_flag(request, "mine")
    scope = f"feed:{org_slug or ''}:{mine}"
    feed = world.iter_org_pipelines(projects)
    if mine:
        feed = (p for p in feed if p.actor == world.me)
    token = request.query_params.get("page-token")
    if token:
        position = decode_token(token, scope)
        if not isinstance(position, str):
            raise InvalidPageToken(token)
        feed = dropwhile(lambda p: _feed_position(p) != position, feed)
        if next(feed, None) is None:
            raise InvalidPageToken(token)
    page, more = take_page(feed)
    next_token = encode_token(scope, _feed_position(page[-1])) if more else None
    return page_body([serialize.pipeline(p, now) for p in page], next_token)


def _feed_position(pipeline: Pipeline) -> str:
    return f"{pipeline.project.index}:{pipeline.number}"


async def get_pipeline(request: Request, ctx: SimContext) -> object:
    pipeline = ctx.world.pipeline(request.path_params["id"])
    if pipeline is None:
        raise ApiError(404, "Pipeline not found")
    return serialize.pipeline(pipeline, ctx.world.now())


async def get_pipeline_config(request: Request, ctx: SimContext) -> object:
    pipeline = ctx.world.pipeline(request.path_params["id"])
    if pipeline is None:
        raise ApiError(404, "Pipeline not found")
    return pipeline_config(pipeline)


async def list_pipeline_workflows(request: Request, ctx: SimContext) -> object:
    pipeline_id = request.path_params["id"]
    pipeline = ctx.world.pipeline(pipeline_id)
    if pipeline is None:
        raise ApiError(404, "Pipeline not found")
    now = ctx.world.now()
    workflows = pipeline.workflows_at(now)
    page, next_token = offset_page(
        workflows, request.query_params.get("page-token"), f"workflows:{pipeline_id}"
    )
    return page_body([serialize.workflow(w, now) for w in page], next_token)


async def get_workflow(request: Request, ctx: SimContext) -> object:
    workflow = ctx.world.workflow(request.path_params["id"])
    if workflow is None:
        raise ApiError(404, "Workflow not found")
    return serialize.workflow(workflow, ctx.world.now())


async def list_workflow_jobs(request: Request, ctx: SimContext) -> object:
    workflow_id = request.path_params["id"]
    workflow = ctx.world.workflow(workflow_id)
    if workflow is None:
        raise ApiError(404, "Workflow not found")
    now = ctx.world.now()
    # The spec omits `page-token` here, but the live API honours it (docs/circleci-api.md
    # §Pagination).
    page, next_token = offset_page(
        workflow.jobs, request.query_params.get("page-token"), f"jobs:{workflow_id}"
    )
    return page_body([serialize.job(j, now) for j in page], next_token)


def _job(request: Request, ctx: SimContext) -> tuple[Job, datetime]:
    project = ctx.project(request)
    job = ctx.world.job(project.slug, request.path_params["number"])
    if job is None:
        raise ApiError(404, "Job not found")
    return job, ctx.world.now()


async def get_job_details(request: Request, ctx: SimContext) -> object:
    job, now = _job(request, ctx)
    return serialize.job_details(job, now)


async def get_tests(request: Request, ctx: SimContext) -> object:
    job, now = _job(request, ctx)
    page, next_token = offset_page(
        serialize.job_test_results(job, now),
        request.query_params.get("page-token"),
        f"tests:{job.id}",
    )
    return page_body(list(page), next_token)


async def get_artifacts(request: Request, ctx: SimContext) -> object:
    job, now = _job(request, ctx)
    page, next_token = offset_page(
        serialize.artifacts(job, now), request.query_params.get("page-token"), f"artifacts:{job.id}"
    )
    return page_body(list(page), next_token)


async def list_schedules(request: Request, ctx: SimContext) -> object:
    project = ctx.project(request)
    speed = ctx.world.config.speed
    items = [serialize.schedule(project, s, speed) for s in project.schedules]
    page, next_token = offset_page(
        items, request.query_params.get("page-token"), f"schedules:{project.id}"
    )
    return page_body(list(page), next_token)


async def get_schedule(request: Request, ctx: SimContext) -> object:
    found = ctx.world.schedule(request.path_params["id"])
    if found is None:
        raise ApiError(404, "Schedule not found")
    project, schedule = found
    return serialize.schedule(project, schedule, ctx.world.config.speed)


async def get_v1_job(request: Request, ctx: SimContext) -> object:
    job, now = _job(request, ctx)
    return serialize.v1_job(job, now, steps.v1_steps(job, now, str(request.base_url)))


ROUTES = (
    ApiRoute(V2 + "/me", "GET", "getCurrentUser", get_current_user),
    ApiRoute(V2 + "/me/collaborations", "GET", "getCollaborations", get_collaborations),
    ApiRoute(V2 + "/user/{id}", "GET", "getUser", get_user),
    ApiRoute(PROJECT, "GET", "getProjectBySlug", get_project),
    ApiRoute(PROJECT + "/pipeline", "GET", "listPipelinesForProject", list_project_pipelines),
    ApiRoute(PROJECT + "/pipeline/mine", "GET", "listMyPipelines", list_my_pipelines),
    ApiRoute(
        PROJECT + "/pipeline/{number:int}", "GET", "getPipelineByNumber", get_pipeline_by_number
    ),
    ApiRoute(PROJECT + "/job/{number:int}", "GET", "getJobDetails", get_job_details),
    ApiRoute(PROJECT + "/{number:int}/tests", "GET", "getTests", get_tests),
    ApiRoute(PROJECT + "/{number:int}/artifacts", "GET", "getJobArtifacts", get_artifacts),
    ApiRoute(PROJECT + "/schedule", "GET", "listSchedulesForProject", list_schedules),
    ApiRoute(V2 + "/schedule/{id}", "GET", "getScheduleById", get_schedule),
    ApiRoute(V2 + "/pipeline", "GET", "listPipelines", list_org_pipelines),
    ApiRoute(V2 + "/pipeline/{id}", "GET", "getPipelineById", get_pipeline),
    ApiRoute(V2 + "/pipeline/{id}/config", "GET", "getPipelineConfigById", get_pipeline_config),
    ApiRoute(
        V2 + "/pipeline/{id}/workflow", "GET", "listWorkflowsByPipelineId", list_pipeline_workflows
    ),
    ApiRoute(V2 + "/workflow/{id}", "GET", "getWorkflowById", get_workflow),
    ApiRoute(V2 + "/workflow/{id}/job", "GET", "listWorkflowJobs", list_workflow_jobs),
    # v1.1 has no operationIds; this name is the simulator's own, for stats and faults.
    ApiRoute("/api/v1.1/project/{vcs}/{org}/{repo}/{number:int}", "GET", "getJobV1", get_v1_job),
)
