"""World objects → JSON bodies shaped like the live API at a given moment.

Fields the spec marks optional are left out rather than sent as null (docs/circleci-api.md
§Live departures); fields it marks required-but-nullable are sent as null.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from exporter.simulator import schedules
from exporter.simulator.model import (
    Actor,
    Job,
    Organization,
    Pipeline,
    Project,
    Schedule,
    Workflow,
)

JSON = dict[str, Any]


def iso(when: datetime) -> str:
    """RFC 3339 in UTC; whole seconds as `...Z`, otherwise `....sssZ`
    (docs/circleci-api.md §Auth and errors)."""
    timespec = "seconds" if when.microsecond < 1000 else "milliseconds"
    return when.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


def avatar_url(actor: Actor) -> str:
    return f"https://avatars.githubusercontent.com/u/{int(actor.id[:6], 16)}?v=4"


def display_name(actor: Actor) -> str:
    return actor.login.replace("-", " ").title()


def user(actor: Actor) -> JSON:
    return {
        "id": actor.id,
        "login": actor.login,
        "name": display_name(actor),
        "avatar_url": avatar_url(actor),
    }


def collaboration(org: Organization) -> JSON:
    return {
        "id": org.id,
        "vcs-type": org.vcs_type,
        "name": org.name,
        "avatar_url": f"https://avatars.githubusercontent.com/u/{int(org.id[:6], 16)}?v=4",
        "slug": org.slug,
    }


def project(p: Project) -> JSON:
    return {
        "slug": p.slug,
        "name": p.name,
        "id": p.id,
        "organization_name": p.organization.name,
        "organization_slug": p.organization.slug,
        "organization_id": p.organization.id,
        "vcs_info": {
            "vcs_url": p.vcs_url,
            "provider": p.provider,
            "default_branch": p.default_branch,
        },
    }


def pipeline(p: Pipeline, now: datetime) -> JSON:
    body: JSON = {
        "id": p.id,
        "errors": [{"type": e.type, "message": e.message} for e in p.errors],
        "project_slug": p.project.slug,
        "updated_at": iso(max([p.created_at, *(w.created_at for w in p.workflows_at(now))])),
        "number": p.number,
        "state": p.state,
        "created_at": iso(p.created_at),
        "trigger": {
            # The trigger is received before the pipeline exists and is stamped in whole seconds.
            "received_at": iso(p.created_at.replace(microsecond=0)),
            "type": p.trigger_type,
            "actor": {"login": p.actor.login, "avatar_url": avatar_url(p.actor)},
        },
    }
    if p.project.provider == "CircleCI":
        # GitLab and GitHub App pipelines have no `vcs` (docs/circleci-api.md §Pipelines); their
        # git data is in trigger_parameters.
        body["trigger_parameters"] = standalone_trigger_parameters(p)
    else:
        body["vcs"] = {
            "provider_name": p.project.provider,
            "origin_repository_url": p.project.vcs_url,
            "target_repository_url": p.project.vcs_url,
            "revision": p.revision,
            "branch": p.branch,
            "commit": {"subject": p.subject, "body": ""},
        }
    return body


def standalone_trigger_parameters(p: Pipeline) -> JSON:
    checkout_url = f"git@gitlab.com:{p.project.organization.name}/{p.project.name}.git"
    return {
        "git": {
            "branch": p.branch,
            "tag": "",
            "ref": f"refs/heads/{p.branch}",
            "checkout_sha": p.revision,
            "checkout_url": checkout_url,
        },
        "gitlab": {
            "web_url": p.project.vcs_url,
            "branch": p.branch,
            "commit_sha": p.revision,
            "commit_title": p.subject,
            "repo_name": p.project.name,
            "type": "push",
        },
        "circleci": {
            "event_time": iso(p.created_at),
            "event_type": "push",
            "trigger_type": "gitlab",
            "actor_id": p.actor.id,
        },
    }


def workflow(w: Workflow, now: datetime) -> JSON:
    done = w.is_completed_at(now)
    body: JSON = {
        "pipeline_id": w.pipeline.id,
        "id": w.id,
        "name": w.name,
        "project_slug": w.project.slug,
        "status": w.status_at(now),
        "started_by": w.started_by,
        "pipeline_number": w.pipeline.number,
        "created_at": iso(w.created_at),
        "stopped_at": iso(w.stopped_at) if done else None,
    }
    if done and w.canceled_by is not None:
        body["canceled_by"] = w.canceled_by
    return body


def job(j: Job, now: datetime) -> JSON:
    """An item of listWorkflowJobs; approval and never-queued jobs carry no `job_number`."""
    status = j.status_at(now)
    body: JSON = {
        "id": j.id,
        "name": j.name,
        "type": j.type,
        "project_slug": j.workflow.project.slug,
        "status": status,
        "dependencies": list(j.dependencies),
    }
    number = j.number_at(now)
    if number is not None:
        body["job_number"] = number
    if j.started_at is not None and now >= j.started_at:
        body["started_at"] = iso(j.started_at)
    elif number is not None:
        # A queued job has started_at null although the spec requires a time (docs/circleci-api.md
        # §Jobs).
        body["started_at"] = None
    if j.is_completed_at(now) and (j.started_at is not None or number is not None):
        body["stopped_at"] = iso(j.stopped_at)
    if j.dependencies:
        body["requires"] = {dep: ["success"] for dep in j.dependencies}
    if j.type == "approval":
        body["approval_request_id"] = j.id
        if j.approved_by is not None and status == "success":
            body["approved_by"] = j.approved_by
    if j.canceled_by is not None and status == "canceled":
        body["canceled_by"] = j.canceled_by
    return body


def job_details(j: Job, now: datetime) -> JSON:
    project_ = j.workflow.project
    status = j.status_at(now)
    started = j.started_at is not None and now >= j.started_at
    done = j.is_completed_at(now)
    assert j.number is not None and j.queued_at is not None
    body: JSON = {
        "web_url": f"{project_.legacy_url}/{j.number}",
        "project": {
            "id": project_.id,
            "slug": project_.slug,
            "name": project_.name,
            "external_url": project_.vcs_url,
        },
        "parallel_runs": [{"index": i, "status": status} for i in range(j.template.parallelism)],
        "latest_workflow": {"id": j.workflow.id, "name": j.workflow.name},
        "name": j.name,
        "executor": {"resource_class": j.template.resource_class, "type": j.template.executor},
        "parallelism": j.template.parallelism,
        "status": status,
        "number": j.number,
        "pipeline": {"id": j.workflow.pipeline.id},
        "created_at": iso(j.workflow.created_at),
        "queued_at": iso(j.queued_at),
        # `duration` is milliseconds, null until the job stops (docs/circleci-api.md §Jobs).
        "started_at": iso(j.started_at) if started and j.started_at else None,
        "duration": None,
        "messages": [],
        "contexts": [{"name": "org-global"}] if j.name.startswith("deploy") else [],
        "organization": {"name": project_.organization.name},
    }
    if done:
        body["stopped_at"] = iso(j.stopped_at)
        if j.started_at is not None:
            body["duration"] = int((j.stopped_at - j.started_at).total_seconds() * 1000)
    return body


def job_test_results(j: Job, now: datetime) -> list[JSON]:
    """The job's test results once it has finished (none while it runs or if it was canceled)."""
    if not j.is_completed_at(now) or j.final_status == "canceled" or not j.ran:
        return []
    rng = random.Random(j.test_seed)
    failed = set(j.failed_tests)
    results = []
    for i, test in enumerate(j.template.tests):
        run_time = round(test.mean_run_time * rng.lognormvariate(0, 0.3), 3)
        # The message is a string, empty unless the test failed (CircleCI's MCP server requires
        # `message: z.string()`; docs/circleci-api.md §Test results).
        if test.skipped:
            result, message, run_time = "skipped", "", 0.0
        elif i in failed:
            result = "failure"
            message = f"AssertionError: {test.name} expected 200, got 500"
        else:
            result, message = "success", ""
        results.append(
            {
                "message": message,
                "source": "pytest",
                "run_time": run_time,
                "file": test.file,
                "result": result,
                "name": test.name,
                "classname": test.classname,
            }
        )
    return results


def artifacts(j: Job, now: datetime) -> list[JSON]:
    if not j.is_completed_at(now) or not j.ran:
        return []
    paths = ["logs/build.log"] + (["test-results/junit.xml"] if j.template.tests else [])
    return [
        {
            "path": path,
            "node_index": node,
            "url": f"https://output.circle-artifacts.com/output/job/{j.id}/artifacts/{node}/{path}",
        }
        for node in range(j.template.parallelism)
        for path in paths
    ]


def schedule(p: Project, s: Schedule, speed: float) -> JSON:
    """A schedule as GET /project/{slug}/schedule and GET /schedule/{id} serve it: kebab-case
    keys (docs/circleci-api.md §Schedules)."""
    return {
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "project-slug": p.slug,
        "created-at": iso(s.created_at),
        "updated-at": iso(s.created_at),
        "parameters": {"branch": s.branch},
        "actor": {
            "id": s.actor_id,
            "login": s.actor_login,
            "name": display_name(Actor(s.actor_id, s.actor_login)),
            "avatar_url": None,
        },
        "timetable": schedules.timetable(s, speed),
    }


_V1_OUTCOME = {"success": "success", "failed": "failed", "canceled": "canceled",
               "infrastructure_fail": "infrastructure_fail", "timedout": "timedout"}  # fmt: skip


def v1_job(j: Job, now: datetime, steps: list[JSON]) -> JSON:
    """API v1.1 "Single Job" (docs/circleci-api.md §v1.1 single job); `steps` from
    `exporter.simulator.steps`."""
    project_ = j.workflow.project
    pipeline_ = j.workflow.pipeline
    status = j.status_at(now)
    done = j.is_completed_at(now)
    started = j.started_at is not None and now >= j.started_at
    lifecycle = "finished" if done else "running" if started else "queued"
    if done and not j.ran:
        lifecycle = "not_run"
    vcs_type, username, reponame = project_.webhook_slug.split("/")
    stop = iso(j.stopped_at) if done and j.started_at else None
    start = iso(j.started_at) if started and j.started_at else None
    duration = (
        int((j.stopped_at - j.started_at).total_seconds() * 1000) if done and j.started_at else None
    )
    return {
        "build_num": j.number,
        "build_url": f"{project_.legacy_url}/{j.number}",
        "vcs_url": project_.vcs_url,
        "vcs_revision": pipeline_.revision,
        "vcs_type": vcs_type,
        "username": username,
        "reponame": reponame,
        "branch": pipeline_.branch,
        "vcs_tag": None,
        "subject": pipeline_.subject,
        "body": "",
        "committer_name": pipeline_.actor.login,
        "why": pipeline_.trigger_type,
        "retry_of": None,
        "parallel": j.template.parallelism,
        "queued_at": iso(j.queued_at) if j.queued_at else None,
        "start_time": start,
        "stop_time": stop,
        "build_time_millis": duration,
        "lifecycle": lifecycle,
        "outcome": _V1_OUTCOME.get(status) if done else None,
        "status": status,
        "workflows": {
            "job_name": j.name,
            "job_id": j.id,
            "workflow_id": j.workflow.id,
            "workflow_name": j.workflow.name,
            "workspace_id": j.workflow.id,
            "upstream_job_ids": list(j.dependencies),
        },
        "picard": {
            "executor": j.template.executor,
            "resource_class": {"class": j.template.resource_class},
        },
        "steps": steps,
    }
