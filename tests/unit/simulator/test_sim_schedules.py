"""Simulated schedules: served like the API (kebab-case, pages, by id), fired on their
timetable with the API's trigger type, and the smoke schedule stops partway."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from exporter.circleci import models
from exporter.circleci.timetable import Plan
from exporter.simulator import SimClock, SimConfig, World
from exporter.simulator.schedules import timetable
from tests.unit.simulator.conftest import START

pytestmark = pytest.mark.anyio


async def test_schedules_are_served_kebab_case_and_by_id(
    world: World, api: httpx.AsyncClient
) -> None:
    project = world.projects[0]
    body = (await api.get(f"/project/{project.slug}/schedule")).json()
    assert body.get("next_page_token") is None  # one page (the key may be left out)
    names = {item["name"] for item in body["items"]}
    assert names == {s.name for s in project.schedules} and "smoke" in names
    item = body["items"][0]
    assert {"project-slug", "created-at", "updated-at"} <= set(item)
    assert {"per-hour", "hours-of-day", "days-of-week"} <= set(item["timetable"])
    assert item["parameters"] == {"branch": project.default_branch}
    one = (await api.get(f"/schedule/{item['id']}")).json()
    assert one == item
    missing = await api.get("/schedule/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and "message" in missing.json()


def test_scheduled_pipelines_fire_in_their_slots_until_the_smoke_stops() -> None:
    clock = SimClock.manual(START)
    config = SimConfig(projects=2, seed=7, speed=60, history=0, schedule_stop_after=3 * 3600)
    world = World(config, clock)
    clock.advance(10 * 60)
    project = world.projects[0]
    smoke = next(s for s in project.schedules if s.name == "smoke")
    plan = Plan.of(models.Timetable.model_validate(timetable(smoke, config.speed)))
    assert plan.per_hour == 60  # hourly, compressed 60 times
    runs = [
        p
        for p in world.pipelines(project.slug)
        if p.trigger_type == "scheduled_pipeline" and p.actor.login == smoke.actor_login
    ]
    stop = START + timedelta(seconds=3 * 3600 / config.speed)
    assert runs and all(p.created_at < stop for p in runs)
    assert all(p.branch == smoke.branch for p in runs)
    # One run in each slot before the stop (the last slot may straddle it), none after.
    slots = plan.slots_between(START.timestamp(), stop.timestamp())
    assert len(slots) - 1 <= len(runs) <= len(slots)
    for run, slot in zip(runs, slots, strict=False):
        assert slot.start <= run.created_at.timestamp() < slot.end
    assert all(w.name == "build-and-test" for p in runs for w in p.workflows)
