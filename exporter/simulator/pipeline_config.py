"""A pipeline's configuration (`GET /pipeline/{id}/config`): the project's `.circleci/config.yml`
as written (`source`) and as CircleCI compiled it for this pipeline (`compiled`).

The source declares every workflow of the project, each gated by the conditions under which the
timeline runs it; the compiled form is version 2 with those conditions evaluated, so it holds
exactly the workflows the pipeline ran. A pipeline whose config failed has an empty `compiled`
(spec: "If there were errors processing the pipeline's configuration, then this field may be
empty").
"""

from __future__ import annotations

from typing import Any

import yaml

from exporter.simulator.model import JobTemplate, Pipeline, Project, WorkflowTemplate

_DOCKER_IMAGE = "cimg/python:3.12"
_MACHINE_IMAGE = "ubuntu-2204:2024.05.1"
_SCHEDULED = {"equal": ["scheduled_pipeline", "<< pipeline.trigger_source >>"]}


def pipeline_config(pipeline: Pipeline) -> dict[str, str]:
    project = pipeline.project
    ran = {workflow.name for workflow in pipeline.workflows}
    compiled = "" if pipeline.errors else _dump(_compiled(project, ran))
    return {"source": _dump(_source(project)), "compiled": compiled}


def _source(project: Project) -> dict[str, Any]:
    workflows = {}
    for template in project.workflows:
        body: dict[str, Any] = {"jobs": _workflow_jobs(template)}
        condition = _when(template, project)
        if condition is not None:
            body["when"] = condition
        workflows[template.name] = body
    return {"version": 2.1, "jobs": _job_definitions(project), "workflows": workflows}


def _compiled(project: Project, ran: set[str]) -> dict[str, Any]:
    workflows: dict[str, Any] = {"version": 2}
    for template in project.workflows:
        if template.name in ran:
            workflows[template.name] = {"jobs": _workflow_jobs(template)}
    return {"version": 2, "jobs": _job_definitions(project), "workflows": workflows}


def _when(template: WorkflowTemplate, project: Project) -> dict[str, Any] | None:
    if template.runs_on == "schedule":
        return _SCHEDULED
    not_scheduled = {"not": _SCHEDULED}
    if template.runs_on == "default-branch-push":
        on_default = {"equal": [project.default_branch, "<< pipeline.git.branch >>"]}
        return {"and": [not_scheduled, on_default]}
    if any(template.name in schedule.workflows for schedule in project.schedules):
        return None  # runs on pushes and on a schedule alike
    return not_scheduled if project.schedules else None


def _workflow_jobs(template: WorkflowTemplate) -> list[Any]:
    jobs: list[Any] = []
    for job in template.jobs:
        options: dict[str, Any] = {}
        if job.type == "approval":
            options["type"] = "approval"
        if job.requires:
            options["requires"] = list(job.requires)
        if job.name.startswith("deploy"):
            options["context"] = ["org-global"]
        jobs.append({job.name: options} if options else job.name)
    return jobs


def _job_definitions(project: Project) -> dict[str, Any]:
    definitions: dict[str, Any] = {}
    for template in project.workflows:
        for job in template.jobs:
            if job.type == "build":
                definitions[job.name] = _job_definition(job)
    return definitions


def _job_definition(job: JobTemplate) -> dict[str, Any]:
    body: dict[str, Any] = (
        {"machine": {"image": _MACHINE_IMAGE}}
        if job.executor == "machine"
        else {"docker": [{"image": _DOCKER_IMAGE}]}
    )
    body["resource_class"] = job.resource_class
    if job.parallelism > 1:
        body["parallelism"] = job.parallelism
    steps: list[Any] = ["checkout", {"run": {"name": job.name, "command": f"make {job.name}"}}]
    if job.tests:
        steps.append({"store_test_results": {"path": "test-results"}})
    body["steps"] = steps
    return body


def _dump(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
