"""`circleci-exporter --demo`: the exporter watching a simulated organisation, in one process.

The simulator serves on a loopback port, so the exporter talks to it over real HTTP exactly as
it talks to circleci.com, with the token the simulator made up for this run; nothing leaves the
machine and the user needs no token.
"""

from __future__ import annotations

import logging
import socket
from datetime import timedelta

from pydantic import SecretStr

from exporter.service import run_exporter
from exporter.settings import ProjectSettings, Settings
from exporter.simulator import RunningSimulator, SimConfig

logger = logging.getLogger(__name__)

DEMO_WORLD = SimConfig(
    projects=12,
    seed=1,
    # An hour of CircleCI activity per minute: pipelines arrive, run and finish while you watch.
    speed=60.0,
    history=timedelta(days=1),
)


def demo_settings(settings: Settings, sim: RunningSimulator) -> Settings:
    """The user's settings pointed at the simulator, with its token, projects and quick cycles."""
    collect = settings.collect.model_copy(
        update={
            "interval": min(settings.collect.interval, 5.0),
            "insights_interval": min(settings.collect.insights_interval, 60.0),
            "schedules_interval": min(settings.collect.schedules_interval, 60.0),
            # The simulated hourly schedules fire every minute at speed 60; the real grace (15
            # minutes) would hide the demo's missed run for a quarter of an hour.
            "schedule_grace": min(settings.collect.schedule_grace, 30.0),
        }
    )
    # The simulator is local: no need to ration requests as for circleci.com.
    api = settings.api.model_copy(
        update={
            "url": sim.api_url,
            "token": SecretStr(sim.token),
            "token_file": None,
            "requests_per_second": 200.0,
        }
    )
    projects = [
        ProjectSettings(slug=p.slug, branches=["default", "release/*"], other_branches="fold")
        for p in sim.world.projects
    ]
    return settings.model_copy(update={"api": api, "collect": collect, "projects": projects})


async def run_demo(
    settings: Settings, sock: socket.socket, webhook_sock: socket.socket | None = None
) -> None:
    async with RunningSimulator(DEMO_WORLD) as sim:
        logger.info(
            "demo: watching a simulated organisation",
            extra={"projects": len(sim.world.projects), "simulator": sim.api_url},
        )
        await run_exporter(demo_settings(settings, sim), sock, webhook_sock=webhook_sock, demo=True)
