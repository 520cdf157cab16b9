"""What schedule tracking costs: one schedule list per project per `schedules_interval`, and no
other request. Two identical simulated worlds on manual clocks are polled by two exporters,
one tracking schedules; the simulators' own request counts (/__sim/stats) must differ by
exactly the schedule lists."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import httpx
import pytest

from exporter.simulator import RunningSimulator, SimConfig
from exporter.state.schedules import ScheduleKey
from tests.e2e.live_harness import exporter, settings_for, simulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

INTERVAL = 30.0
SCHEDULES_INTERVAL = 15 * 60.0
STEPS = 95  # 47.5 minutes of polling: schedule sweeps at 0, 15, 30 and 45 minutes
CONFIG = SimConfig(projects=3, seed=3, speed=60, history=timedelta(hours=2))


async def sim_stats(sim: RunningSimulator) -> Counter[str]:
    async with httpx.AsyncClient() as client:
        body = (await client.get(f"{sim.base_url}/__sim/stats")).json()
    return Counter(body["requests"])


async def test_schedules_cost_one_list_per_project_per_interval() -> None:
    async with simulator(CONFIG) as plain_sim, simulator(CONFIG) as tracking_sim:
        # Only feature branches are tracked: the scheduled pipelines (all on default branches)
        # are on branches the live collector never reads, and still count for their schedules.
        world = plain_sim.world
        projects = [{"slug": p.slug, "branches": ["feature/*"]} for p in world.projects]
        smoke_slug, hourly_slug = world.projects[0].slug, world.projects[1].slug
        plain_settings = settings_for(
            plain_sim.api_url, projects, interval="30s", schedules_interval="15m"
        )
        tracking_settings = settings_for(
            tracking_sim.api_url, projects, interval="30s", schedules_interval="15m"
        )
        async with (
            exporter(plain_sim, plain_settings) as plain,
            exporter(tracking_sim, tracking_settings) as tracking,
        ):
            for collector in plain.live.projects.values():
                collector.schedules = None  # the plain exporter does not track schedules
            sweeps = 0
            for step in range(STEPS):
                if step * INTERVAL % SCHEDULES_INTERVAL == 0:
                    await tracking.parts.schedules.sweep()
                    sweeps += 1
                await plain.cycle()
                await tracking.cycle()
                plain_sim.world.clock.advance(INTERVAL)
                tracking_sim.world.clock.advance(INTERVAL)
            plain_requests = await sim_stats(plain_sim)
            tracking_requests = await sim_stats(tracking_sim)
            rows = tracking.parts.schedules.book.store.snapshot()

    assert sweeps == 4
    extra = tracking_requests - plain_requests
    assert extra == Counter({"listSchedulesForProject": len(projects) * sweeps})
    assert plain_requests - tracking_requests == Counter()
    # The tracking was real: the schedules were read and their runs attributed from the
    # pipeline lists alone (last run known, status unknown on untracked branches).
    smoke = rows[ScheduleKey(smoke_slug, "smoke")]
    assert smoke.last_run_at is not None and smoke.last_status is None
    assert smoke.missed_runs > 0  # it stopped 3 world hours (3 minutes) into the test
    # The simulation starts on a Monday: the hourly weekday schedule (every minute at speed 60)
    # ran in every slot.
    hourly = rows[ScheduleKey(hourly_slug, "hourly-weekdays")]
    assert hourly.last_run_at is not None and hourly.missed_runs == 0
