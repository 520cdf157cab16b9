"""A lone surrogate from the API or a webhook cannot crash the exposition (issue 12, item 1)."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry

from exporter.circleci import models
from exporter.collect import translate
from exporter.collect.branches import BranchPolicy
from exporter.metrics import render
from exporter.settings import EffectiveBranchRules
from exporter.state import Buckets, State
from exporter.state.updates import ProjectUpdate
from exporter.web.publisher import Publisher

START = 10_000.0
# Valid JSON: the escapes decode to lone surrogates, which no UTF-8 encoder accepts.
HOSTILE = "x\\ud800y\\udfffz"


def _parse(model: type[models.ApiModel], text: str) -> models.ApiModel:
    return model.model_validate(json.loads(text))


def _stamp(at: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(at, UTC).isoformat()


def test_surrogates_are_replaced_where_api_and_webhook_text_enters() -> None:
    workflow = _parse(
        models.Workflow,
        f'{{"id": "w1", "name": "{HOSTILE}", "pipeline_id": "p", "pipeline_number": 1,'
        f' "project_slug": "gh/a/b", "status": "success", "created_at": "{_stamp(START)}"}}',
    )
    assert isinstance(workflow, models.Workflow)
    assert workflow.name == "x\ufffdy\ufffdz"
    pipeline = _parse(
        models.Pipeline,
        f'{{"id": "p", "number": 1, "project_slug": "gh/a/b", "state": "created",'
        f' "created_at": "{_stamp(START)}",'
        f' "trigger_parameters": {{"git": {{"branch": "{HOSTILE}"}}}}}}',
    )
    assert isinstance(pipeline, models.Pipeline)
    assert pipeline.branch == "x\ufffdy\ufffdz"


def test_a_state_fed_hostile_names_renders_as_utf8() -> None:
    state = State(watch_start=START, buckets=Buckets((1.0,), (1.0,), (1.0,)), series_ttl=1e9)
    policy = BranchPolicy(EffectiveBranchRules(branches=["*"]), "main")
    place = policy.place("main", None)
    assert place is not None
    stamp = _stamp(START + 10)
    workflow = _parse(
        models.Workflow,
        f'{{"id": "w1", "name": "{HOSTILE}", "pipeline_id": "p", "pipeline_number": 1,'
        f' "project_slug": "gh/a/b", "status": "success", "created_at": "{stamp}",'
        f' "stopped_at": "{stamp}"}}',
    )
    assert isinstance(workflow, models.Workflow)
    state.apply(translate.workflow_update("gh/a/b", workflow, place))
    rendered = render(state.snapshot(START + 20), {"live": 30.0}, None)
    assert "x\ufffdy\ufffdz".encode() in rendered.text


@pytest.mark.anyio
async def test_a_failed_render_keeps_the_last_good_body_and_is_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = State(watch_start=START, buckets=Buckets((1.0,), (1.0,), (1.0,)), series_ttl=1e9)
    registry = CollectorRegistry()
    publisher = Publisher(state, {"live": 30.0}, registry=registry, clock=lambda: START)
    good = publisher.rendered

    def broken(*_: object) -> object:
        raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")

    monkeypatch.setattr("exporter.metrics.incremental.assemble", broken)
    state.record_success("gh/a/b", "live", START)  # a change, so that the publish renders
    await publisher.publish_now()
    state.apply(ProjectUpdate("gh/a/b", "b", "a", "main", "https://example.test/gh/a/b"))
    await publisher.publish_now()
    assert publisher.rendered is good
    assert registry.get_sample_value("circleci_exporter_render_errors_total") == 2
    # The changes a failed render missed stay pending: the next good render shows them.
    monkeypatch.undo()
    await publisher.publish_now()
    assert b'circleci_project_info{project="gh/a/b"' in publisher.rendered.text
    assert b'circleci_up{project="gh/a/b"} 1.0' in publisher.rendered.text


def test_unknown_test_results_are_counted_as_other() -> None:
    """5000 result strings on one page must not become 5000 series (issue 12, item 11)."""
    from exporter.state.updates import JobUpdate

    job = JobUpdate("gh/a/b", "main", "build", "w1", "test", "j1", 7, "success", START, START,
                    START + 1, "u")  # fmt: skip
    results = [models.TestResult(name=f"t{i}", result=f"weird-{i}") for i in range(5000)]
    results += [models.TestResult(name="ok", result="success")]
    update = translate.test_results_update(job, results)
    assert dict(update.counts) == {"other": 5000, "success": 1}


def test_far_future_timestamps_are_clamped_to_now_plus_the_skew() -> None:
    import time

    workflow = _parse(
        models.Workflow,
        '{"id": "w1", "name": "b", "pipeline_id": "p", "pipeline_number": 1,'
        ' "project_slug": "gh/a/b", "status": "success", "created_at": "9999-12-31T00:00:00Z",'
        ' "stopped_at": "9999-12-31T23:59:59Z"}',
    )
    assert isinstance(workflow, models.Workflow)
    assert workflow.stopped_at is not None
    latest = time.time() + models.FUTURE_SKEW.total_seconds()
    assert latest - 5 <= workflow.stopped_at.timestamp() <= latest
    assert workflow.created_at.timestamp() <= latest
