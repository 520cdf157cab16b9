"""CircleCI webhook payloads → run updates. Pure functions, like `translate` for polling.

Payload shapes follow CircleCI's samples (docs/circleci-api.md §Webhook deliveries). They
are open maps, so unknown keys are ignored; only what a run update needs is required.
Updates carry the same labels, ids, times and links as the ones polling builds, so the state
counts a run once whichever source delivers it first.

Pipelines are not counted from events: a webhook's `trigger.type` is spelled differently from
the API's (`schedule` vs `scheduled_pipeline`, `gitlab` vs `webhook`), and events carry no
pipeline errors, so `circleci_pipelines_total` stays with polling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError

from exporter.circleci import slugs
from exporter.circleci.models import ApiModel, Timestamp
from exporter.collect import translate
from exporter.collect.branches import Placement
from exporter.state.updates import JobUpdate, WorkflowUpdate

WORKFLOW_COMPLETED = "workflow-completed"
JOB_COMPLETED = "job-completed"
EVENT_TYPES = (WORKFLOW_COMPLETED, JOB_COMPLETED)


class EventProject(ApiModel):
    id: str
    slug: str


class _GitRef(ApiModel):
    branch: str | None = None
    tag: str | None = None


class _TriggerParameters(ApiModel):
    git: _GitRef | None = None


class EventPipeline(ApiModel):
    id: str
    number: int
    created_at: Timestamp
    # GitHub OAuth and Bitbucket Cloud pipelines carry `vcs`; GitLab, GitHub App and
    # Bitbucket DC ones carry `trigger_parameters.git` instead (docs/circleci-api.md §Pipelines).
    vcs: _GitRef | None = None
    trigger_parameters: _TriggerParameters | None = None

    def ref(self) -> tuple[str | None, str | None]:
        """(branch, tag); an empty string means absent (the standalone sample has `tag: ""`)."""
        git = self.trigger_parameters.git if self.trigger_parameters else None
        branch = (self.vcs.branch if self.vcs else None) or (git.branch if git else None)
        tag = (self.vcs.tag if self.vcs else None) or (git.tag if git else None)
        return branch or None, tag or None


class EventWorkflow(ApiModel):
    id: str
    name: str
    created_at: Timestamp
    stopped_at: Timestamp | None = None
    # Present in workflow-completed only (docs/circleci-api.md §Webhook deliveries).
    status: str | None = None


class EventJob(ApiModel):
    id: str
    name: str
    status: str
    number: int | None = None
    started_at: Timestamp | None = None
    stopped_at: Timestamp | None = None


class _Event(ApiModel):
    id: str
    project: EventProject
    pipeline: EventPipeline


class WorkflowCompleted(_Event):
    type: Literal["workflow-completed"]
    workflow: EventWorkflow

    def to_update(self, project_slug: str, place: Placement) -> WorkflowUpdate:
        workflow = self.workflow
        return translate.workflow_run_update(
            project_slug,
            place,
            workflow_id=workflow.id,
            name=workflow.name,
            pipeline_number=self.pipeline.number,
            # Validation guarantees a status (see `parse_event`).
            status=workflow.status or "",
            created_at=workflow.created_at,
            stopped_at=workflow.stopped_at,
        )


class JobCompleted(_Event):
    type: Literal["job-completed"]
    job: EventJob
    # CircleCI's standalone job-completed sample has no `workflow` (webhooks README); such an
    # event cannot be labelled, so `parse_event` reports it and polling counts the job.
    workflow: EventWorkflow | None = None

    def to_update(self, project_slug: str, place: Placement) -> JobUpdate:
        job, workflow = self.job, self.workflow
        assert workflow is not None  # checked by parse_event
        return translate.job_run_update(
            project_slug,
            place,
            workflow_id=workflow.id,
            workflow_name=workflow.name,
            workflow_created_at=workflow.created_at,
            pipeline_number=self.pipeline.number,
            job_id=job.id,
            name=job.name,
            number=job.number,
            status=job.status,
            started_at=job.started_at,
            stopped_at=job.stopped_at,
        )


Event = WorkflowCompleted | JobCompleted


class MalformedEvent(ValueError):
    """The payload is not shaped like a CircleCI event; the message is one line."""


class UnusableEvent(ValueError):
    """A well-formed event that cannot become a run update (polling will see the run)."""


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    event: Event
    project: str  # normalised like the API's slugs (`github/` → `gh/`)

    @property
    def id(self) -> str:
        return self.event.id

    def ref(self) -> tuple[str | None, str | None]:
        return self.event.pipeline.ref()

    def update(self, place: Placement, project: str | None = None) -> WorkflowUpdate | JobUpdate:
        """The run update, under `project` (the tracked spelling of the slug) if given."""
        return self.event.to_update(project or self.project, place)


def parse_event(data: dict[str, object]) -> ParsedEvent:
    """A decoded payload whose `type` is one of EVENT_TYPES → its event.

    Raises MalformedEvent when required fields are missing or mistyped, or the project slug is
    not a slug; UnusableEvent for a job event without its workflow.
    """
    try:
        event: Event
        if data.get("type") == WORKFLOW_COMPLETED:
            event = WorkflowCompleted.model_validate(data)
            if not event.workflow.status:
                raise MalformedEvent("workflow-completed without workflow.status")
        else:
            event = JobCompleted.model_validate(data)
            if event.workflow is None:
                raise UnusableEvent("job-completed without its workflow")
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MalformedEvent(f"{where}: {first['msg']}") from None
    try:
        project = slugs.normalize_project_slug(event.project.slug)
    except ValueError as err:
        raise MalformedEvent(f"project.slug: {err}") from None
    return ParsedEvent(event, project)
