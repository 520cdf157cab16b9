"""POST /webhooks/circleci against the ASGI app: what is applied, what is refused, and how
each outcome is counted."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from webhook_support import (
    ENDPOINT,
    OAUTH,
    SECRET,
    STANDALONE,
    FakeApi,
    Harness,
    make_harness,
    with_changes,
)

from exporter.sharding import owner_of
from exporter.web.webhooks import MAX_BODY, RecentIds, webhook_app
from tests.fixtures import webhook_sample

pytestmark = pytest.mark.anyio

WORKFLOW = "workflow-completed"
JOB = "job-completed"


def workflow_event(event_id: str, workflow_id: str, created: str, status: str,
                   branch: str = "main") -> dict[str, Any]:  # fmt: skip
    """The OAuth sample as another run: its own event id, workflow id, times and status."""
    payload = webhook_sample("workflow-completed.github-oauth")
    payload["id"] = event_id
    payload["pipeline"]["vcs"]["branch"] = branch
    payload["workflow"].update(
        id=workflow_id, status=status, created_at=f"{created}:00Z", stopped_at=f"{created}:30Z"
    )
    return payload


def runs(h: Harness) -> dict[tuple[str, ...], int]:
    return dict(h.state.snapshot(0.0).workflow_runs)


async def test_oauth_workflow_event_is_applied_and_published(harness: Harness) -> None:
    response = await harness.post(webhook_sample("workflow-completed.github-oauth"))
    assert (response.status_code, response.text) == (200, "applied\n")
    assert runs(harness) == {(OAUTH, "main", "build-test-deploy", "success"): 1}
    row = harness.state.snapshot(0.0).workflows[(OAUTH, "main", "build-test-deploy")]
    assert row.last_completed_status == "success"
    assert harness.published == [1]
    assert harness.events(WORKFLOW, "applied") == 1


async def test_standalone_workflow_event_is_applied_on_its_git_branch(harness: Harness) -> None:
    response = await harness.post(webhook_sample("workflow-completed.standalone"))
    assert response.status_code == 200
    row = harness.state.snapshot(0.0).workflows[(STANDALONE, "main", "build")]
    assert (row.last_completed_status, row.consecutive_failures) == ("failed", 1)


async def test_redelivered_event_is_applied_once(harness: Harness) -> None:
    payload = webhook_sample("workflow-completed.github-oauth")
    first = await harness.post(payload)
    again = await harness.post(payload)
    assert (first.text, again.status_code, again.text) == ("applied\n", 200, "duplicate\n")
    assert runs(harness) == {(OAUTH, "main", "build-test-deploy", "success"): 1}
    assert harness.published == [1]
    assert harness.events(WORKFLOW, "duplicate") == 1


async def test_same_run_in_a_new_event_is_still_counted_once(harness: Harness) -> None:
    # The dedupe memory is bounded; behind it the state counts each run once by its id.
    payload = webhook_sample("workflow-completed.github-oauth")
    await harness.post(payload)
    await harness.post(with_changes(payload, id="another-delivery-of-the-same-run"))
    assert runs(harness) == {(OAUTH, "main", "build-test-deploy", "success"): 1}


def test_dedupe_memory_is_bounded_and_forgets_the_oldest() -> None:
    seen = RecentIds(2)
    for event_id in ("a", "b", "c"):
        seen.add(event_id)
    assert "a" not in seen
    assert "b" in seen and "c" in seen


async def test_older_event_never_overwrites_newer_state(harness: Harness) -> None:
    newer = workflow_event("e2", "w2", "2021-09-02T10:00", "failed")
    older = workflow_event("e1", "w1", "2021-09-02T09:00", "success")
    await harness.post(newer)
    await harness.post(older)
    snapshot = harness.state.snapshot(0.0)
    row = snapshot.workflows[(OAUTH, "main", "build-test-deploy")]
    assert row.last_completed_status == "failed"
    assert row.last_run is not None and row.last_run.run_id == "w2"
    # The older success lies behind the newer failure: the streak is one.
    assert row.consecutive_failures == 1
    assert dict(snapshot.workflow_runs) == {
        (OAUTH, "main", "build-test-deploy", "failed"): 1,
        (OAUTH, "main", "build-test-deploy", "success"): 1,
    }


async def test_older_job_event_never_overwrites_newer_job_state(harness: Harness) -> None:
    newer = webhook_sample("job-completed.github-oauth")
    older = with_changes(newer, id="older-event")
    older["job"].update(
        id="older-job",
        number=120,
        status="failed",
        started_at="2021-09-01T20:00:00Z",
        stopped_at="2021-09-01T20:01:00Z",
    )
    await harness.post(newer)
    await harness.post(older)
    row = harness.state.snapshot(0.0).jobs[(OAUTH, "main", "welcome", "test")]
    assert row.last_completed_status == "success"
    assert row.last_run is not None and row.last_run.number == "136"


async def test_unknown_event_type_is_accepted_and_ignored(harness: Harness) -> None:
    ping = {"id": "p1", "type": "ping", "webhook": {"id": "w", "name": "n"}}
    response = await harness.post(ping)
    assert (response.status_code, response.text) == (202, "ignored\n")
    assert harness.events("other", "ignored") == 1
    assert runs(harness) == {} and harness.published == []


async def test_events_of_untracked_projects_are_ignored(harness: Harness) -> None:
    payload = with_changes(webhook_sample("workflow-completed.github-oauth"),
                           project__slug="github/someone/else")  # fmt: skip
    response = await harness.post(payload)
    assert response.status_code == 202
    assert runs(harness) == {}
    assert harness.events(WORKFLOW, "ignored") == 1


async def test_events_of_another_shards_project_are_202_other_shard_and_not_applied() -> None:
    # Of 3 shards, OAUTH is shard 2's and STANDALONE shard 0's: shard 0 tracks only STANDALONE.
    assert (owner_of(OAUTH, 3), owner_of(STANDALONE, 3)) == (2, 0)
    async for h in make_harness(sharding={"shard": 0, "total_shards": 3}):
        assert list(h.collectors) == [STANDALONE]
        await h.read_projects()
        response = await h.post(webhook_sample("workflow-completed.github-oauth"))
        assert (response.status_code, response.text) == (202, "other_shard\n")
        assert h.events(WORKFLOW, "other_shard") == 1
        assert h.events(WORKFLOW, "applied") == 0
        assert runs(h) == {} and h.published == []
        own = await h.post(webhook_sample("workflow-completed.standalone"))
        assert (own.status_code, own.text) == (200, "applied\n")


async def test_events_of_dropped_branches_are_ignored(harness: Harness) -> None:
    response = await harness.post(workflow_event("e", "w", "2021-09-02T09:00", "success", "dev"))
    assert response.status_code == 202
    assert runs(harness) == {}


async def test_folded_branches_are_counted_as_other_without_gauges() -> None:
    async for h in make_harness(defaults={"other_branches": "fold"}):
        await h.read_projects()
        await h.post(workflow_event("e", "w", "2021-09-02T09:00", "failed", "feature/x"))
        snapshot = h.state.snapshot(0.0)
        assert dict(snapshot.workflow_runs) == {(OAUTH, "other", "build-test-deploy", "failed"): 1}
        assert snapshot.workflows == {}


async def test_events_before_the_project_was_read_are_left_to_polling() -> None:
    async for h in make_harness():
        response = await h.post(webhook_sample("workflow-completed.github-oauth"))
        assert response.status_code == 202
        assert runs(h) == {}


async def test_job_event_queues_details_and_tests_fetched_once(harness: Harness) -> None:
    await harness.post(webhook_sample("job-completed.github-oauth"))
    job_key = (OAUTH, "main", "welcome", "test")
    snapshot = harness.state.snapshot(0.0)
    assert dict(snapshot.job_runs) == {(*job_key, "success"): 1}
    assert job_key not in snapshot.job_queue_times  # no API call in the request path
    assert harness.api.count("/job/136") == 0
    collector = harness.collectors[OAUTH]
    await collector.cycle()
    await collector.cycle()
    snapshot = harness.state.snapshot(0.0)
    assert snapshot.job_queue_times[job_key].count == 1
    assert dict(snapshot.jobs[job_key].last_tests) == {"success": 2, "failure": 1}
    assert harness.api.count("/job/136") == 1
    assert harness.api.count("/136/tests") == 1


async def test_polling_does_not_fetch_again_what_a_job_event_queued() -> None:
    job = webhook_sample("job-completed.github-oauth")
    api = FakeApi()
    async for h in make_harness(api=api):
        await h.read_projects()
        await h.post(job)
        await h.collectors[OAUTH].cycle()  # fetches the queued details and tests
        # Now polling finds the job's pipeline, workflow and job.
        pipeline, workflow = job["pipeline"], job["workflow"]
        api.pipelines.append({
            "id": pipeline["id"], "number": 130, "project_slug": OAUTH, "state": "created",
            "created_at": pipeline["created_at"], "updated_at": pipeline["created_at"],
            "errors": [], "trigger": {"type": "webhook", "received_at": pipeline["created_at"],
                                      "actor": {"login": "x"}},
            "vcs": {"branch": "main", "provider_name": "GitHub", "origin_repository_url": "u",
                    "target_repository_url": "u"},
        })  # fmt: skip
        api.workflows[pipeline["id"]] = [{
            "id": workflow["id"], "name": "welcome", "pipeline_id": pipeline["id"],
            "pipeline_number": 130, "project_slug": OAUTH, "status": "success",
            "started_by": "u", "created_at": workflow["created_at"],
            "stopped_at": workflow["stopped_at"],
        }]  # fmt: skip
        api.jobs[workflow["id"]] = [{
            "id": job["job"]["id"], "name": "test", "type": "build", "status": "success",
            "job_number": 136, "started_at": job["job"]["started_at"],
            "stopped_at": job["job"]["stopped_at"], "dependencies": [],
        }]  # fmt: skip
        await h.collectors[OAUTH].cycle()
        assert api.count(f"/workflow/{workflow['id']}/job") == 1, "polling saw the job"
        assert api.count("/job/136") == 1
        assert api.count("/136/tests") == 1
        snapshot = h.state.snapshot(0.0)
        assert dict(snapshot.job_runs) == {(OAUTH, "main", "welcome", "test", "success"): 1}
        assert snapshot.job_queue_times[(OAUTH, "main", "welcome", "test")].count == 1


async def test_job_event_without_its_workflow_is_ignored(harness: Harness) -> None:
    response = await harness.post(webhook_sample("job-completed.standalone"))
    assert response.status_code == 202
    assert harness.state.snapshot(0.0).job_runs == {}
    assert harness.events(JOB, "ignored") == 1


async def test_verified_events_relax_the_project_polling(harness: Harness) -> None:
    assert harness.collectors[OAUTH].last_webhook_at is None
    await harness.post(webhook_sample("workflow-completed.github-oauth"))
    assert harness.collectors[OAUTH].last_webhook_at == 1.9e9
    await harness.post(webhook_sample("workflow-completed.standalone"), secret="wrong")
    assert harness.collectors[STANDALONE].last_webhook_at is None


# -- bad requests: a clear status, nothing applied, an outcome counted -------------------------

GOOD = webhook_sample("workflow-completed.github-oauth")


@pytest.mark.parametrize(
    ("secret", "headers"),
    [(None, {}),
     ("wrong-secret", {}),
     (None, {"circleci-signature": "v1=not-a-valid-signature"}),
     (None, {"circleci-signature": "v2=0123456789abcdef"})],
)  # fmt: skip
async def test_missing_or_bad_signature_is_401(
    harness: Harness, secret: str | None, headers: dict[str, str]
) -> None:
    response = await harness.post(GOOD, secret=secret, headers=headers)
    assert response.status_code == 401
    assert runs(harness) == {} and harness.published == []
    assert harness.events(WORKFLOW, "invalid_signature") == 1


async def test_unverified_event_type_header_cannot_mint_label_values(harness: Harness) -> None:
    await harness.post(GOOD, secret=None, headers={"circleci-event-type": "x" * 40})
    assert harness.events("other", "invalid_signature") == 1
    assert (
        harness.registry.get_sample_value(
            "circleci_exporter_webhook_events_total",
            {"event": "x" * 40, "outcome": "invalid_signature"},
        )
        is None
    )


async def test_body_over_one_mib_is_413(harness: Harness) -> None:
    big = json.dumps(with_changes(GOOD, padding="x" * MAX_BODY)).encode()
    response = await harness.post(big)
    assert response.status_code == 413
    assert runs(harness) == {}
    assert harness.events("other", "too_large") == 1


async def test_streamed_body_over_one_mib_without_length_is_413(harness: Harness) -> None:
    chunks_read: list[int] = []

    async def stream() -> Any:
        for i in range(64):  # 4 MiB in 64 KiB chunks; the receiver stops after about 1 MiB
            chunks_read.append(i)
            yield b"x" * 65536

    response = await harness.http.post(
        ENDPOINT, content=stream(), headers={"circleci-signature": "v1=00"}
    )
    assert response.status_code == 413
    assert len(chunks_read) <= MAX_BODY // 65536 + 2


async def test_exactly_one_mib_is_read_and_checked(harness: Harness) -> None:
    body = json.dumps(GOOD).encode()
    body += b" " * (MAX_BODY - len(body))
    response = await harness.post(body)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body",
    [b"not json", b"", b"[1, 2]", b'"a string"', b"{\"type\": \"workflow-completed\"}",
     json.dumps(with_changes(GOOD, workflow__status=None)).encode(),
     json.dumps(with_changes(GOOD, project__slug="nope")).encode(),
     json.dumps(with_changes(GOOD, pipeline__created_at="soon")).encode()],
)  # fmt: skip
async def test_not_json_or_wrong_shape_is_400(harness: Harness, body: bytes) -> None:
    response = await harness.post(body, headers={"circleci-event-type": WORKFLOW})
    assert response.status_code == 400
    assert runs(harness) == {} and harness.published == []
    assert harness.events(WORKFLOW, "malformed") == 1


async def test_only_post_is_served(harness: Harness) -> None:
    response = await harness.http.get(ENDPOINT)
    assert response.status_code == 405


async def test_rotated_secrets_are_all_accepted() -> None:
    async for h in make_harness(secrets=("new-secret", SECRET)):
        await h.read_projects()
        old = await h.post(GOOD, secret=SECRET)
        new = await h.post(webhook_sample("workflow-completed.standalone"), secret="new-secret")
        unknown = await h.post(with_changes(GOOD, id="x"), secret="retired-secret")
        assert (old.status_code, new.status_code, unknown.status_code) == (200, 200, 401)


async def test_separate_listener_app_serves_only_the_webhook(harness: Harness) -> None:
    app = webhook_app(harness.receiver)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://hooks"
    ) as client:
        assert (await client.get("/metrics")).status_code == 404
        body = json.dumps(GOOD).encode()
        from exporter.simulator import sign

        response = await client.post(
            ENDPOINT, content=body, headers={"circleci-signature": sign(body, SECRET)}
        )
        assert response.status_code == 200


# --- the public listener's limits (issue 12, item 10) ------------------------------------------


def _signed(body: bytes) -> dict[str, str]:
    import hashlib
    import hmac

    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"circleci-signature": f"v1={digest}", "circleci-event-type": WORKFLOW,
            "content-type": "application/json"}  # fmt: skip


@pytest.mark.parametrize("depth", [100_000, 990])
async def test_deeply_nested_signed_json_is_400_and_counted(harness: Harness, depth: int) -> None:
    payload = webhook_sample("workflow-completed.github-oauth")
    text = json.dumps(payload)
    nested = "[" * depth + "1" + "]" * depth
    body = text[:-1].encode() + b', "pipeline_extra": ' + nested.encode() + b"}"
    response = await harness.http.post(ENDPOINT, content=body, headers=_signed(body))
    assert response.status_code == 400
    assert harness.events(WORKFLOW, "malformed") == 1


async def test_a_body_that_never_finishes_is_cut_at_the_body_timeout(harness: Harness) -> None:
    import anyio

    harness.receiver.body_timeout = 0.3

    async def trickle() -> Any:
        yield b'{"type": '
        await anyio.sleep(5)
        yield b"1}"

    with anyio.fail_after(3):
        response = await harness.http.post(ENDPOINT, content=trickle(), headers=_signed(b""))
    assert response.status_code == 408
    assert harness.events(WORKFLOW, "timeout") == 1


async def test_requests_past_the_connection_cap_are_refused_and_counted(
    harness: Harness,
) -> None:
    import anyio

    harness.receiver.max_connections = 2
    harness.receiver.body_timeout = 1.0
    release = anyio.Event()

    async def slow() -> Any:
        yield b"{"
        await release.wait()
        yield b"}"

    statuses: list[int] = []

    async def post_slowly() -> None:
        response = await harness.http.post(ENDPOINT, content=slow(), headers=_signed(b""))
        statuses.append(response.status_code)

    async with anyio.create_task_group() as tg:
        tg.start_soon(post_slowly)
        tg.start_soon(post_slowly)
        await anyio.sleep(0.1)
        third = await harness.http.post(ENDPOINT, content=b"{}", headers=_signed(b"{}"))
        release.set()
    assert third.status_code == 503
    assert harness.events("other", "overloaded") == 1
    assert sorted(statuses) == [401, 401]


def test_dedupe_memory_is_bounded_in_bytes() -> None:
    seen = RecentIds(1000, max_bytes=10_000)
    for n in range(50):
        seen.add(f"{n:04d}" + "x" * 996)  # 1000 bytes each
    assert seen.bytes <= 10_000
    assert "0049" + "x" * 996 in seen and "0000" + "x" * 996 not in seen
    seen.add("y" * 20_000)  # alone over the bound: never remembered
    assert seen.bytes <= 10_000


async def test_an_event_spelling_the_slug_with_other_capitals_is_the_tracked_project(
    harness: Harness,
) -> None:
    """CircleCI compares slugs case-insensitively (issue 12, item 9)."""
    payload = webhook_sample("workflow-completed.github-oauth")
    payload["project"]["slug"] = payload["project"]["slug"].upper().replace("GITHUB", "github")
    response = await harness.post(payload)
    assert (response.status_code, response.text) == (200, "applied\n")
    assert runs(harness) == {(OAUTH, "main", "build-test-deploy", "success"): 1}
