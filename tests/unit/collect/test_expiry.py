"""Stale-series expiry runs on its own: it removes, logs and counts, and rendering does not."""

from __future__ import annotations

import logging

import anyio
import pytest
from prometheus_client import CollectorRegistry

from exporter.collect.expiry import StaleSeriesExpiry
from exporter.collect.telemetry import CollectTelemetry
from exporter.state import Buckets, State
from exporter.state.updates import JobUpdate, PipelineUpdate, WorkflowUpdate
from exporter.web.publisher import Publisher

P = "gh/acme/api"
DAY = 86400.0
START = 10_000.0


def stale_and_fresh_state() -> State:
    """`old` was last seen on day 0, `main` on day 5; the TTL is 7 days."""
    state = State(watch_start=START, buckets=Buckets((60.0,), (60.0,), (5.0,)), series_ttl=7 * DAY)
    state.apply(PipelineUpdate(P, "old", "p1", 1, "webhook", START + 1))
    state.apply(WorkflowUpdate(P, "old", "build", "w1", 1, "success", START, START + 60, "u"))
    state.apply(JobUpdate(P, "old", "build", "w1", "test", "j1", 3, "success", START,
                          START + 1, START + 50, "u"))  # fmt: skip
    fresh = START + 5 * DAY
    state.apply(WorkflowUpdate(P, "main", "build", "w2", 2, "success", fresh, fresh + 60, "u"))
    return state


def removed(registry: CollectorRegistry, kind: str) -> float | None:
    return registry.get_sample_value("circleci_exporter_stale_series_removed_total", {"kind": kind})


def test_expiry_removes_logs_counts_and_asks_for_a_render(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = stale_and_fresh_state()
    registry = CollectorRegistry()
    renders: list[int] = []
    expiry = StaleSeriesExpiry(state, telemetry=CollectTelemetry(registry),
                               on_expired=lambda: renders.append(1),
                               clock=lambda: START + 8 * DAY)  # fmt: skip
    assert removed(registry, "workflow") == 0.0  # served before anything expires
    with caplog.at_level(logging.INFO, logger="exporter.collect.expiry"):
        expired = expiry.expire_once()
    assert expired.workflows == {(P, "old", "build")}
    assert expired.jobs == {(P, "old", "build", "test")}
    assert expired.branches == {(P, "old")}
    snapshot = state.snapshot(START + 8 * DAY)
    assert set(snapshot.workflows) == {(P, "main", "build")}
    assert snapshot.jobs == {} and snapshot.pipelines == {}
    assert (removed(registry, "workflow"), removed(registry, "job"),
            removed(registry, "branch")) == (1.0, 1.0, 1.0)  # fmt: skip
    assert renders == [1]
    [record] = [r for r in caplog.records if r.getMessage() == "removed stale series"]
    assert record.__dict__["series"] == f"{P}/old, {P}/old/build"
    assert (record.__dict__["workflows"], record.__dict__["jobs"]) == (1, 1)

    # Nothing else is stale: no count, no log line, no render.
    caplog.clear()
    assert not expiry.expire_once().keys
    assert removed(registry, "workflow") == 1.0 and renders == [1] and not caplog.records


@pytest.mark.anyio
async def test_publishing_leaves_stale_series_to_the_expiry_task() -> None:
    state = stale_and_fresh_state()
    publisher = Publisher(state, {"live": 30.0}, clock=lambda: START + 8 * DAY)
    await publisher.publish_now()
    assert (P, "old", "build") in publisher.snapshot.workflows


@pytest.mark.anyio
async def test_the_task_expires_on_its_own_schedule() -> None:
    state = stale_and_fresh_state()
    registry = CollectorRegistry()
    expired = anyio.Event()
    expiry = StaleSeriesExpiry(state, telemetry=CollectTelemetry(registry),
                               on_expired=expired.set, clock=lambda: START + 8 * DAY,
                               every=0.01)  # fmt: skip
    async with anyio.create_task_group() as tg:
        tg.start_soon(expiry.run)
        with anyio.fail_after(5):
            await expired.wait()
        tg.cancel_scope.cancel()
    assert removed(registry, "workflow") == 1.0
