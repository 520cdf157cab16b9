"""Insights endpoints (docs/circleci-api.md §Insights), computed from the world's history on
each request."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request

from exporter.simulator import insights
from exporter.simulator.context import ApiError, ApiRoute, Handler, SimContext, query_flag
from exporter.simulator.insights import ALL_BRANCHES, Window
from exporter.simulator.insights_tests import flaky_tests, kebab_case, workflow_test_metrics
from exporter.simulator.model import Project
from exporter.simulator.pagination import offset_page, page_body
from exporter.simulator.serialize import iso

V2 = "/api/v2/insights"
PROJECT = "/{vcs}/{org}/{repo}"
WORKFLOW = V2 + PROJECT + "/workflows/{workflow}"
PAGES = V2 + "/pages" + PROJECT + "/summary"
TIME_SERIES = V2 + "/time-series" + PROJECT + "/workflows/{workflow}/jobs"
MAX_RANGE = timedelta(days=90)  # end-date ≤ start-date + 90 d (circleci-api.md §Insights)


def _branch(request: Request, project: Project) -> str | None:
    """`branch`, or every branch with `all-branches`, else the default branch
    (docs/circleci-api.md §Insights)."""
    if query_flag(request, "all-branches"):
        return ALL_BRANCHES
    return request.query_params.get("branch") or project.default_branch


def _window(request: Request, now: datetime) -> tuple[str, Window]:
    name = request.query_params.get("reporting-window") or insights.DEFAULT_WINDOW
    if name not in insights.WINDOW_DAYS:
        raise ApiError(400, f"Invalid reporting-window {name!r}")
    return name, Window.named(name, now)


def _date(request: Request, name: str) -> datetime | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"Invalid {name} {value!r}") from None
    if parsed.tzinfo is None:
        raise ApiError(400, f"Invalid {name} {value!r}: a time zone is required")
    return parsed


def _list_scope(request: Request) -> str:
    """What a page token is valid for: this list with these filters, whatever the page."""
    query = sorted((k, v) for k, v in request.query_params.multi_items() if k != "page-token")
    return f"{request.url.path}?{query}"


def _workflow_names(project: Project) -> list[str]:
    return [template.name for template in project.workflows]


def _known_workflow(request: Request, project: Project) -> str:
    name: str = request.path_params["workflow"]
    if name not in _workflow_names(project):
        raise ApiError(404, "Workflow not found")
    return name


async def workflow_metrics(request: Request, ctx: SimContext) -> object:
    project = ctx.project(request)
    now = ctx.world.sync()
    _, window = _window(request, now)
    branch = _branch(request, project)
    items = [
        {
            "name": name,
            "project_id": project.id,
            "window_start": iso(window.start),
            "window_end": iso(window.end),
            "metrics": insights.workflow_metrics(
                insights.completed_runs(ctx.world, project, window, branch=branch, name=name),
                window,
            ),
        }
        for name in _workflow_names(project)
    ]
    page, token = offset_page(items, request.query_params.get("page-token"), _list_scope(request))
    return page_body(list(page), token)


async def workflow_runs(request: Request, ctx: SimContext) -> object:
    project = ctx.project(request)
    name = _known_workflow(request, project)
    now = ctx.world.sync()
    runs = insights.completed_runs(
        ctx.world, project, _run_range(request, now), branch=_branch(request, project), name=name
    )
    items = [
        {
            "id": run.id,
            "branch": run.branch,
            "duration": round(run.duration_seconds),
            "created_at": iso(run.created_at),
            "stopped_at": iso(run.stopped_at),
            "credits_used": run.credits,
            "status": run.final_status,
            "is_approval": run.is_approval,
        }
        for run in reversed(runs)
    ]
    page, token = offset_page(items, request.query_params.get("page-token"), _list_scope(request))
    return page_body(list(page), token)


def _run_range(request: Request, now: datetime) -> Window:
    """`start-date`/`end-date` of the run lists: the 90 days before the end by default."""
    start, end = _date(request, "start-date"), _date(request, "end-date")
    if end is not None and start is None:
        raise ApiError(400, "start-date is required when end-date is given")
    end = end or now
    start = start or end - MAX_RANGE
    if end - start > MAX_RANGE:
        raise ApiError(400, "end-date must be at most 90 days after start-date")
    return Window(start, end)


async def job_runs(request: Request, ctx: SimContext) -> object:
    """Runs of one job, from the same workflow runs as getProjectWorkflowRuns (same window,
    same branch), so a backfill from both lines up with the live timeline; newest first."""
    project = ctx.project(request)
    name = _known_workflow(request, project)
    job_name: str = request.path_params["job"]
    template = next(t for t in project.workflows if t.name == name)
    if job_name not in {job.name for job in template.jobs}:
        raise ApiError(404, "Job not found")
    now = ctx.world.sync()
    runs = insights.completed_runs(
        ctx.world, project, _run_range(request, now), branch=_branch(request, project), name=name
    )
    jobs = insights.completed_jobs(runs).get(job_name, [])
    items = [
        {
            "id": job.id,
            "started_at": iso(job.started_at or job.stopped_at),  # ran: started_at is set
            "stopped_at": iso(job.stopped_at),
            "status": job.final_status,
            "credits_used": job.credits,
            "duration": round(job.duration_seconds or 0.0),
        }
        for job in sorted(jobs, key=lambda j: j.stopped_at, reverse=True)
    ]
    page, token = offset_page(items, request.query_params.get("page-token"), _list_scope(request))
    return page_body(list(page), token)


async def job_metrics(request: Request, ctx: SimContext) -> object:
    project = ctx.project(request)
    name = _known_workflow(request, project)
    now = ctx.world.sync()
    _, window = _window(request, now)
    runs = insights.completed_runs(
        ctx.world, project, window, branch=_branch(request, project), name=name
    )
    jobs = insights.completed_jobs(runs)
    wanted = request.query_params.get("job-name", "")
    items = [
        {
            "name": job_name,
            "window_start": iso(window.start),
            "window_end": iso(window.end),
            "metrics": insights.job_metrics(job_runs, window),
        }
        for job_name, job_runs in jobs.items()
        if wanted in job_name
    ]
    page, token = offset_page(items, request.query_params.get("page-token"), _list_scope(request))
    return page_body(list(page), token)


async def workflow_summary(request: Request, ctx: SimContext) -> object:
    """Metrics over the last 90 days; trends compare the last 30 days with the 30 before."""
    project = ctx.project(request)
    name = _known_workflow(request, project)
    now = ctx.world.sync()
    branch = _branch(request, project)
    window = Window.named(insights.DEFAULT_WINDOW, now)
    runs = insights.completed_runs(ctx.world, project, window, branch=branch, name=name)
    metrics = insights.workflow_metrics(runs, window)
    metrics["completed_runs"] = len(runs)
    metrics["window_start"], metrics["window_end"] = iso(window.start), iso(window.end)
    metrics.pop("total_recoveries")
    recent = Window.named("last-30-days", now)
    current = _trend_basis(ctx, project, recent, branch, name)
    prior = _trend_basis(ctx, project, recent.prior(), branch, name)
    return {
        "metrics": metrics,
        "trends": insights.trends(current, prior),
        "workflow_names": _workflow_names(project),
    }


def _trend_basis(
    ctx: SimContext, project: Project, window: Window, branch: str | None, name: str
) -> dict[str, float]:
    runs = insights.completed_runs(ctx.world, project, window, branch=branch, name=name)
    return insights.summary_trend_basis(runs, window)


async def test_metrics(request: Request, ctx: SimContext) -> object:
    project = ctx.project(request)
    name = _known_workflow(request, project)
    now = ctx.world.sync()
    runs = insights.completed_runs(
        ctx.world,
        project,
        Window(now - ctx.world.retention, now),
        branch=_branch(request, project),
        name=name,
    )
    flaky_names = {item["test_name"] for item in _flaky(ctx, project, now)}
    return workflow_test_metrics(runs, flaky_names, now)


def _flaky(ctx: SimContext, project: Project, now: datetime) -> list[dict[str, Any]]:
    return flaky_tests(ctx.world.timeline(project.slug).pipelines, now)


async def get_flaky_tests(request: Request, ctx: SimContext) -> object:
    project = ctx.project(request)
    items = _flaky(ctx, project, ctx.world.sync())
    body = {"flaky_tests": items, "total_flaky_tests": len(items)}
    if ctx.world.config.flaky_tests_casing == "kebab":
        return kebab_case(body)
    return body


async def get_branches(request: Request, ctx: SimContext) -> object:
    project = ctx.project(request)
    now = ctx.world.sync()
    name = request.query_params.get("workflow-name")
    runs = insights.completed_runs(
        ctx.world, project, Window(now - ctx.world.retention, now), branch=ALL_BRANCHES, name=name
    )
    return {
        "org_id": project.organization.id,
        "project_id": project.id,
        "branches": sorted({run.branch for run in runs}),
    }


async def org_summary(request: Request, ctx: SimContext) -> object:
    org_slug = f"{request.path_params['vcs']}/{request.path_params['org']}"
    if ctx.world.organization(org_slug) is None:
        raise ApiError(404, "Organization not found")
    now = ctx.world.sync()
    _, window = _window(request, now)
    projects = ctx.world.projects_of(org_slug)
    wanted = set(request.query_params.getlist("project-names"))
    selected = [p for p in projects if not wanted or p.name in wanted]
    all_current: list[Any] = []
    all_prior: list[Any] = []
    rows = []
    for project in selected:
        current = insights.completed_runs(ctx.world, project, window, branch=ALL_BRANCHES)
        prior = insights.completed_runs(ctx.world, project, window.prior(), branch=ALL_BRANCHES)
        all_current += current
        all_prior += prior
        row_now, row_before = insights.totals(current, window), insights.totals(prior, window)
        for basis in (row_now, row_before):
            basis.pop("throughput")
        rows.append(
            {
                "project_name": project.name,
                "metrics": row_now,
                "trends": insights.trends(row_now, row_before),
            }
        )
    org_now, org_before = insights.totals(all_current, window), insights.totals(all_prior, window)
    return {
        "org_data": {"metrics": org_now, "trends": insights.trends(org_now, org_before)},
        "org_project_data": rows,
        "all_projects": [p.name for p in projects],
    }


async def project_page_summary(request: Request, ctx: SimContext) -> object:
    project = ctx.project(request)
    now = ctx.world.sync()
    _, window = _window(request, now)
    branches = set(request.query_params.getlist("branches"))
    names = set(request.query_params.getlist("workflow-names"))

    def runs_in(w: Window) -> list[Any]:
        runs = insights.completed_runs(ctx.world, project, w, branch=ALL_BRANCHES)
        return [
            r
            for r in runs
            if (not branches or r.branch in branches) and (not names or r.name in names)
        ]

    current, prior = runs_in(window), runs_in(window.prior())
    project_now, project_before = insights.totals(current, window), insights.totals(prior, window)
    workflow_rows, branch_rows = [], []
    for name in sorted({r.name for r in current}):
        mine, before = [r for r in current if r.name == name], [r for r in prior if r.name == name]
        row = insights.workflow_row(mine)
        workflow_rows.append(
            {
                "workflow_name": name,
                "metrics": row,
                "trends": insights.trends(row, insights.workflow_row(before)),
            }
        )
        for branch in sorted({r.branch for r in mine}):
            on_branch = [r for r in mine if r.branch == branch]
            row = insights.workflow_row(on_branch)
            prior_row = insights.workflow_row([r for r in before if r.branch == branch])
            branch_rows.append(
                {
                    "workflow_name": name,
                    "branch": branch,
                    "metrics": row,
                    "trends": insights.trends(row, prior_row),
                }
            )
    return {
        "org_id": project.organization.id,
        "project_id": project.id,
        "project_data": {
            "metrics": project_now,
            "trends": insights.trends(project_now, project_before),
        },
        "project_workflow_data": workflow_rows,
        "project_workflow_branch_data": branch_rows,
        "all_branches": sorted({r.branch for r in current}),
        "all_workflows": _workflow_names(project),
    }


async def job_timeseries(request: Request, ctx: SimContext) -> object:
    """Job runs bucketed by start hour or day; hourly data reaches back 48 h
    (docs/circleci-api.md §Insights freshness)."""
    project = ctx.project(request)
    name = _known_workflow(request, project)
    now = ctx.world.sync()
    granularity = request.query_params.get("granularity", "daily")
    if granularity not in ("daily", "hourly"):
        raise ApiError(400, f"Invalid granularity {granularity!r}")
    step = timedelta(hours=1) if granularity == "hourly" else timedelta(days=1)
    end = _date(request, "end-date") or now
    start = _date(request, "start-date") or end - (
        timedelta(hours=48) if granularity == "hourly" else MAX_RANGE
    )
    branch = request.query_params.get("branch") or project.default_branch
    runs = insights.completed_runs(ctx.world, project, Window(start, end), branch=branch, name=name)
    buckets: dict[tuple[datetime, str], list[Any]] = {}
    for job_name, jobs in insights.completed_jobs(runs).items():
        for job in jobs:
            assert job.started_at is not None
            offset = (job.started_at - start) // step
            buckets.setdefault((start + offset * step, job_name), []).append(job)
    items = [
        _timeseries_item(bucket, job_name, jobs, step)
        for (bucket, job_name), jobs in sorted(buckets.items())
    ]
    page, token = offset_page(items, request.query_params.get("page-token"), _list_scope(request))
    return page_body(list(page), token)


def _timeseries_item(
    bucket: datetime, job_name: str, jobs: list[Any], step: timedelta
) -> dict[str, Any]:
    durations = sorted(job.duration_seconds for job in jobs)
    credits = sorted(job.credits for job in jobs)
    return {
        "name": job_name,
        "min_started_at": iso(min(job.started_at for job in jobs)),
        "max_ended_at": iso(max(job.stopped_at for job in jobs)),
        "timestamp": iso(bucket),
        "metrics": {
            "total_runs": len(jobs),
            "failed_runs": sum(job.final_status in insights.JOB_FAILED for job in jobs),
            "successful_runs": sum(job.final_status == "success" for job in jobs),
            "throughput": len(jobs) / (step / timedelta(days=1)),
            "median_credits_used": credits[len(credits) // 2],
            "total_credits_used": sum(credits),
            "duration_metrics": {
                "min": round(durations[0]),
                "median": round(durations[len(durations) // 2]),
                "max": round(durations[-1]),
                "p95": round(insights.p95(durations)),
                "total": round(sum(durations)),
            },
        },
    }


# Bounds the answers kept: distinct Insights requests (scopes, windows, page tokens).
_MAX_ANSWERS = 10_000


def _refreshed(handler: Handler) -> Handler:
    """Serve an Insights answer computed once per refresh period of world time, as CircleCI's
    own Insights are refreshed periodically rather than per request
    (docs/circleci-api.md §Insights freshness). This also keeps the heavy aggregations fast under
    load: the org summary scans every project's history."""

    async def answer(request: Request, ctx: SimContext) -> object:
        config = ctx.world.config
        now = ctx.world.sync()
        period = int(
            (now - ctx.world.origin).total_seconds() * config.speed // config.insights_refresh
        )
        key = f"{request.url.path}?{sorted(request.query_params.multi_items())}"
        cached = ctx.insights_answers.get(key)
        if cached is not None and cached[0] == period:
            return cached[1]
        body = await handler(request, ctx)
        if len(ctx.insights_answers) >= _MAX_ANSWERS:
            ctx.insights_answers.clear()
        ctx.insights_answers[key] = (period, body)
        return body

    return answer


_ROUTES = (
    # More specific shapes first: the org summary has one segment fewer than a project slug.
    ApiRoute(PAGES, "GET", "getProjectWorkflowsPageData", project_page_summary),
    ApiRoute(TIME_SERIES, "GET", "getJobTimeseries", job_timeseries),
    ApiRoute(V2 + PROJECT + "/workflows", "GET", "getProjectWorkflowMetrics", workflow_metrics),
    ApiRoute(WORKFLOW, "GET", "getProjectWorkflowRuns", workflow_runs),
    ApiRoute(WORKFLOW + "/jobs", "GET", "getProjectWorkflowJobMetrics", job_metrics),
    ApiRoute(WORKFLOW + "/jobs/{job}", "GET", "getProjectJobRuns", job_runs),
    ApiRoute(WORKFLOW + "/summary", "GET", "getWorkflowSummary", workflow_summary),
    ApiRoute(WORKFLOW + "/test-metrics", "GET", "getProjectWorkflowTestMetrics", test_metrics),
    ApiRoute(V2 + PROJECT + "/flaky-tests", "GET", "getFlakyTests", get_flaky_tests),
    ApiRoute(V2 + PROJECT + "/branches", "GET", "getAllInsightsBranches", get_branches),
    ApiRoute(V2 + "/{vcs}/{org}/summary", "GET", "getOrgSummaryData", org_summary),
)  # fmt: skip

# Insights answers are refreshed periodically, not computed per request (see `_refreshed`).
ROUTES = tuple(replace(route, handler=_refreshed(route.handler)) for route in _ROUTES)
