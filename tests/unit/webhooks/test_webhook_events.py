"""Webhook payloads → run updates: CircleCI's samples, slug forms, branches, bad shapes."""

from __future__ import annotations

import pytest
from webhook_support import OAUTH, STANDALONE, with_changes

from exporter.circleci import slugs
from exporter.collect.branches import Placement
from exporter.collect.events import MalformedEvent, UnusableEvent, parse_event
from exporter.state.updates import JobUpdate, WorkflowUpdate
from tests.fixtures import webhook_sample

MAIN = Placement("main", False)


def test_oauth_workflow_sample_becomes_the_update_polling_would_build() -> None:
    payload = webhook_sample("workflow-completed.github-oauth")
    parsed = parse_event(payload)
    assert parsed.id == "3888f21b-eaa7-38e3-8f3d-75a63bba8895"
    assert parsed.project == OAUTH  # github/ → gh/
    assert parsed.ref() == ("main", None)
    update = parsed.update(MAIN)
    assert update == WorkflowUpdate(
        project=OAUTH,
        branch="main",
        workflow="build-test-deploy",
        workflow_id="fda08377-fe7e-46b1-8992-3a7aaecac9c3",
        pipeline_number=130,
        status="success",
        created_at=1630536543.616,
        stopped_at=1630536574.17,
        url=slugs.workflow_url(OAUTH, 130, "fda08377-fe7e-46b1-8992-3a7aaecac9c3"),
    )
    # Our link builder and CircleCI's own link agree.
    assert update.url == payload["workflow"]["url"]


def test_standalone_workflow_sample_takes_its_branch_from_trigger_parameters() -> None:
    parsed = parse_event(webhook_sample("workflow-completed.standalone"))
    assert parsed.project == STANDALONE
    # trigger_parameters.git has tag "", which means no tag.
    assert parsed.ref() == ("main", None)
    update = parsed.update(Placement("other", True))
    assert isinstance(update, WorkflowUpdate)
    assert (update.status, update.branch, update.folded) == ("failed", "other", True)
    assert update.url == webhook_sample("workflow-completed.standalone")["workflow"]["url"]


def test_oauth_job_sample_becomes_a_job_update_with_number_and_times() -> None:
    update = parse_event(webhook_sample("job-completed.github-oauth")).update(MAIN)
    assert isinstance(update, JobUpdate)
    assert (update.workflow, update.job, update.job_number, update.status) == (
        "welcome", "test", 136, "success",
    )  # fmt: skip
    assert update.started_at == update.created_at == 1630536568.841
    assert update.stopped_at == 1630536574.17
    assert update.url.endswith("/130/workflows/fda08377-fe7e-46b1-8992-3a7aaecac9c3/jobs/136")


def test_job_that_never_started_is_ordered_by_its_workflow_creation() -> None:
    payload = with_changes(webhook_sample("job-completed.github-oauth"), job__status="canceled")
    del payload["job"]["started_at"]
    update = parse_event(payload).update(MAIN)
    assert isinstance(update, JobUpdate)
    assert update.started_at is None
    assert update.created_at == 1630536543.616


def test_standalone_job_sample_without_workflow_is_unusable() -> None:
    with pytest.raises(UnusableEvent, match="workflow"):
        parse_event(webhook_sample("job-completed.standalone"))


@pytest.mark.parametrize(
    ("slug", "expected"),
    [("github/acme/api", "gh/acme/api"), ("bitbucket/acme/web", "bb/acme/web"),
     ("gh/acme/api", "gh/acme/api"), ("GitHub/acme/api", "gh/acme/api"),
     (STANDALONE, STANDALONE)],
)  # fmt: skip
def test_project_slugs_are_normalised_like_the_api(slug: str, expected: str) -> None:
    payload = with_changes(webhook_sample("workflow-completed.github-oauth"), project__slug=slug)
    assert parse_event(payload).project == expected


def test_tag_pipelines_have_a_tag_and_no_branch() -> None:
    payload = webhook_sample("workflow-completed.github-oauth")
    del payload["pipeline"]["vcs"]["branch"]
    payload["pipeline"]["vcs"]["tag"] = "v1.2.0"
    assert parse_event(payload).ref() == (None, "v1.2.0")


def test_unknown_keys_are_ignored() -> None:
    payload = with_changes(webhook_sample("workflow-completed.github-oauth"), brand_new={"x": [1]})
    payload["workflow"]["another"] = True
    assert parse_event(payload).id == "3888f21b-eaa7-38e3-8f3d-75a63bba8895"


@pytest.mark.parametrize(
    ("change", "message"),
    [({"workflow": None}, "workflow"),
     ({"workflow__status": None}, "status"),
     ({"pipeline__number": "one hundred"}, "pipeline.number"),
     ({"workflow__created_at": "yesterday"}, "workflow.created_at"),
     ({"project__slug": "not-a-slug"}, "project.slug"),
     ({"id": 17}, "id")],
)  # fmt: skip
def test_wrong_shapes_are_malformed(change: dict[str, object], message: str) -> None:
    payload = with_changes(webhook_sample("workflow-completed.github-oauth"), **change)
    with pytest.raises(MalformedEvent, match=message):
        parse_event(payload)
