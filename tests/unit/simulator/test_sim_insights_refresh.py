"""Insights answers are refreshed once per `insights_refresh` of world time, like CircleCI's."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from exporter.simulator import SimClock, World
from exporter.simulator.model import Workflow

pytestmark = pytest.mark.anyio


async def org_runs(api: httpx.AsyncClient, org: str) -> int:
    response = await api.get(
        f"/insights/{org}/summary", params={"reporting-window": "last-24-hours"}
    )
    response.raise_for_status()
    runs: int = response.json()["org_data"]["metrics"]["total_runs"]
    return runs


async def test_an_answer_holds_until_the_next_refresh(
    api: httpx.AsyncClient, world: World, clock: SimClock
) -> None:
    org = world.projects[0].organization.slug
    period = world.config.insights_refresh / world.config.speed
    elapsed = (clock.now() - world.origin).total_seconds()
    clock.advance(period - elapsed % period)  # the start of a refresh period
    held = refreshed = 0
    for _ in range(200):
        answer = await org_runs(api, org)
        start = clock.now()
        completing = [
            run
            for run in world.completed_between(start, start + timedelta(seconds=period * 0.9))
            if isinstance(run, Workflow) and run.project.organization.slug == org
        ]
        if completing:  # the world changes inside this period; the answer must not
            clock.set(completing[-1].stopped_at)
            assert await org_runs(api, org) == answer
            held += 1
            clock.set(start + timedelta(seconds=period))  # the next period
            refreshed += await org_runs(api, org) != answer
        else:
            clock.advance(period)
        if held >= 3 and refreshed:
            break
    assert held >= 3, "the scenario must complete runs inside refresh periods"
    assert refreshed, "a new period must give a new answer once runs completed"
