"""API v1.1 read endpoints besides the single job: the user, followed projects, a job's tests and
artifacts (CircleCI's v1.1 reference; docs/circleci-api.md §Client-verified shapes). v1.1
answers bare arrays and objects, never pages."""

from __future__ import annotations

from starlette.requests import Request

from exporter.simulator import serialize
from exporter.simulator.context import ApiError, ApiRoute, SimContext
from exporter.simulator.model import Job, Project

V1 = "/api/v1.1"
JOB = V1 + "/project/{vcs}/{org}/{repo}/{number:int}"


def _job(request: Request, ctx: SimContext) -> Job:
    project = ctx.project(request)
    job = ctx.world.job(project.slug, request.path_params["number"])
    if job is None:
        raise ApiError(404, "Job not found")
    return job


async def get_me(request: Request, ctx: SimContext) -> object:
    me = ctx.world.me
    return {
        "login": me.login,
        "name": me.login.title(),
        "avatar_url": serialize.avatar_url(me),
        "basic_email_prefs": "smart",
        "admin": False,
        "days_left_in_trial": 0,
        "projects": {
            project.vcs_url: {"on_dashboard": True, "emails": "default"}
            for project in ctx.world.followed
        },
    }


async def list_followed_projects(request: Request, ctx: SimContext) -> object:
    """ "List of all the projects you're following on CircleCI", with the branches pushed to."""
    ctx.world.sync()
    return [_followed(project, ctx) for project in ctx.world.followed]


def _followed(project: Project, ctx: SimContext) -> dict[str, object]:
    vcs_type, username, reponame = _v1_parts(project)
    branches: dict[str, dict[str, object]] = {}
    for pipeline in ctx.world.timeline(project.slug).pipelines:
        pushers = branches.setdefault(pipeline.branch, {"pusher_logins": []})["pusher_logins"]
        assert isinstance(pushers, list)
        if pipeline.actor.login not in pushers:
            pushers.append(pipeline.actor.login)
    return {
        "vcs_url": project.vcs_url,
        "vcs_type": vcs_type,
        "username": username,
        "reponame": reponame,
        "default_branch": project.default_branch,
        "followed": True,
        "branches": branches,
    }


def _v1_parts(project: Project) -> tuple[str, str, str]:
    """v1.1 names a project `<vcs-type>/<username>/<reponame>`; standalone projects by ids."""
    vcs_type, username, reponame = project.webhook_slug.split("/")
    return vcs_type, username, reponame


async def get_tests(request: Request, ctx: SimContext) -> object:
    """The v1.1 reference shows `message: null` for a passing test and adds `source_type`."""
    job = _job(request, ctx)
    tests = [
        {**result, "message": result["message"] or None, "source_type": result["source"]}
        for result in serialize.job_test_results(job, ctx.world.now())
    ]
    return {"tests": tests}


async def get_artifacts(request: Request, ctx: SimContext) -> object:
    job = _job(request, ctx)
    return [
        {**artifact, "pretty_path": artifact["path"]}
        for artifact in serialize.artifacts(job, ctx.world.now())
    ]


# v1.1 has no operationIds; these names are the simulator's own, for stats and faults.
ROUTES = (
    ApiRoute(V1 + "/me", "GET", "getCurrentUserV1", get_me),
    ApiRoute(V1 + "/projects", "GET", "listFollowedProjectsV1", list_followed_projects),
    ApiRoute(JOB + "/tests", "GET", "getTestsV1", get_tests),
    ApiRoute(JOB + "/artifacts", "GET", "getArtifactsV1", get_artifacts),
)
