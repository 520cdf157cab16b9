"""RunningSimulator over real HTTP, and webhook deliveries to a local receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from exporter.simulator import (
    RunningSimulator,
    SimClock,
    SimConfig,
    WebhookSender,
    World,
    serve,
    sign,
)
from exporter.simulator.webhooks import WebhookRegistry
from exporter.web.listen import listen
from tests.fixtures import SignatureVector, signature_vectors, webhook_sample

pytestmark = pytest.mark.anyio

SECRET = "webhook-secret"


@pytest.mark.parametrize("vector", signature_vectors())
def test_signature_matches_circleci_vectors(vector: SignatureVector) -> None:
    assert sign(vector.body, vector.secret) == f"v1={vector.v1}"


async def test_running_simulator_serves_real_http(clock: SimClock) -> None:
    config = SimConfig(projects=3, seed=5, token="tok")
    async with RunningSimulator(config, clock=clock) as sim:
        assert sim.api_url.startswith("http://127.0.0.1:") and sim.api_url.endswith("/api")
        headers = {"Circle-Token": "tok"}
        async with httpx.AsyncClient(base_url=sim.api_url, headers=headers) as client:
            slug = sim.world.projects[0].slug
            response = await client.get(f"/v2/project/{slug}/pipeline")
            assert response.status_code == 200
            assert len(response.json()["items"]) == 20
            number = next(j.number for w in sim.world.workflows(slug) for j in w.jobs if j.number)
            v1 = await client.get(f"/v1.1/project/{slug}/{number}")
            assert v1.json()["build_num"] == number
            sim.faults.add(match="getCurrentUser", timeout_ratio=1.0, hang_seconds=3)
            with pytest.raises(httpx.ReadTimeout):
                await client.get("/v2/me", timeout=0.3)
        assert sim.stats()["requests"] == {
            "getCurrentUser": 1,
            "getJobV1": 1,
            "listPipelinesForProject": 1,
        }


class _Receiver:
    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.app = Starlette(routes=[Route("/hook", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        self.deliveries.append((dict(request.headers), await request.body()))
        return Response(status_code=202)


@pytest.fixture
async def receiver() -> AsyncIterator[_Receiver]:
    yield _Receiver()


def _sender(world: World, receiver: _Receiver) -> WebhookSender:
    return WebhookSender(
        world, WebhookRegistry(world.config.seed), transport=httpx.ASGITransport(app=receiver.app)
    )


def _webhook_world(clock: SimClock, duplicate: float, reorder: float) -> World:
    config = SimConfig(
        projects=3,
        seed=8,
        webhook_url="http://receiver/hook",
        webhook_secret=SECRET,
        webhook_duplicate_ratio=duplicate,
        webhook_reorder_ratio=reorder,
    )
    return World(config, clock)


async def test_completed_runs_are_delivered_signed(clock: SimClock, receiver: _Receiver) -> None:
    world = _webhook_world(clock, 0.0, 0.0)
    sender = _sender(world, receiver)
    since = clock.now()
    clock.advance(3600)
    await sender.deliver_due()
    expected = world.completed_between(since, clock.now())
    assert len(receiver.deliveries) == len(expected) > 0
    for (headers, body), run in zip(receiver.deliveries, expected, strict=True):
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["circleci-signature"], f"v1={digest}")
        assert headers["user-agent"] == "CircleCI-Webhook/1.0"
        assert headers["content-type"] == "application/json"
        payload = json.loads(body)
        assert headers["circleci-event-type"] == payload["type"]
        assert payload["type"] in {"workflow-completed", "job-completed"}
        subject = payload["workflow"] if payload["type"] == "workflow-completed" else payload["job"]
        assert subject["id"] == run.id
        slug = payload["project"]["slug"]
        assert not slug.startswith(("gh/", "bb/"))  # long forms: github/..., bitbucket/...
    # Nothing is sent twice when no time passes.
    await sender.deliver_due()
    assert len(receiver.deliveries) == len(expected)


async def test_payload_shape_follows_the_samples(clock: SimClock, receiver: _Receiver) -> None:
    world = _webhook_world(clock, 0.0, 0.0)
    sender = _sender(world, receiver)
    clock.advance(3600)
    await sender.deliver_due()
    payloads = [json.loads(body) for _, body in receiver.deliveries]
    workflow_event = next(p for p in payloads if p["type"] == "workflow-completed")
    job_event = next(p for p in payloads if p["type"] == "job-completed")
    for sample, payload in (
        ("workflow-completed.github-oauth", workflow_event),
        ("job-completed.github-oauth", job_event),
    ):
        reference = webhook_sample(sample)
        assert set(payload) == set(reference)
        assert set(payload["workflow"]) == set(reference["workflow"])
    assert set(job_event["job"]) == {"id", "number", "name", "status", "started_at", "stopped_at"}
    assert "status" not in job_event["workflow"]


async def test_duplicates_and_reordering_are_deterministic(clock: SimClock) -> None:
    async def deliveries() -> list[str]:
        receiver = _Receiver()
        world = _webhook_world(SimClock.manual(clock.now()), 0.2, 0.2)
        sender = _sender(world, receiver)
        world.clock.advance(6 * 3600)
        await sender.deliver_due()
        return [json.loads(body)["id"] for _, body in receiver.deliveries]

    first, second = await deliveries(), await deliveries()
    assert first == second
    assert len(first) > len(set(first))  # some events arrive twice

    receiver = _Receiver()
    world = _webhook_world(SimClock.manual(clock.now()), 0.0, 0.3)
    sender = _sender(world, receiver)
    world.clock.advance(6 * 3600)
    await sender.deliver_due()
    stops = [json.loads(body)["happened_at"] for _, body in receiver.deliveries]
    assert stops != sorted(stops)  # some arrive out of order


@asynccontextmanager
async def _serve(app: Starlette) -> AsyncIterator[str]:
    """Run `app` on an ephemeral loopback port; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off"))
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve, [sock])
        while not server.started:  # noqa: ASYNC110 - uvicorn offers only this flag
            await anyio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        server.should_exit = True


async def test_sender_task_posts_to_a_real_receiver(clock: SimClock, receiver: _Receiver) -> None:
    """End to end: RunningSimulator starts the sender, which POSTs over HTTP to a live server."""
    async with _serve(receiver.app) as receiver_url:
        config = SimConfig(
            projects=2, seed=8, webhook_url=receiver_url + "/hook", webhook_secret=SECRET
        )
        async with RunningSimulator(config, clock=clock) as sim:
            sim.sender.poll_interval = 0.05
            clock.advance(2 * 3600)
            with anyio.fail_after(10):
                while not receiver.deliveries:  # noqa: ASYNC110 - polling a plain list
                    await anyio.sleep(0.05)
    headers, body = receiver.deliveries[0]
    assert headers["circleci-signature"] == sign(body, SECRET)
    assert json.loads(body)["type"] in {"workflow-completed", "job-completed"}


async def test_serve_runs_until_cancelled(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="exporter.simulator.server")
    async with anyio.create_task_group() as group:
        group.start_soon(serve, SimConfig(projects=1), listen("127.0.0.1:0"))
        with anyio.fail_after(10):
            while not any("CIRCLECI_API_URL=" in r.getMessage() for r in caplog.records):  # noqa: ASYNC110
                await anyio.sleep(0.02)
        message = next(
            r.getMessage() for r in caplog.records if "CIRCLECI_API_URL=" in r.getMessage()
        )
        found = re.search(r"CIRCLECI_API_URL=(\S+) CIRCLECI_TOKEN=(\S+)", message)
        assert found, message
        api_url, token = found.groups()
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{api_url}/v2/me")).status_code == 401
            me = await client.get(f"{api_url}/v2/me", headers={"Circle-Token": token})
            assert me.status_code == 200
        group.cancel_scope.cancel()
