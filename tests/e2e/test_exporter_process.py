"""The installed `circleci-exporter` as a user runs it, against the simulator over HTTP:
readiness, both exposition formats checked by the real promtool, scrapes that never call
CircleCI, the landing page, and a token that appears nowhere."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import anyio
import httpx
import pytest
import yaml
from anyio.abc import Process
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from exporter.catalog import BY_NAME
from exporter.simulator import RunningSimulator, SimConfig
from tests.conftest import EXPORTER
from tests.rules.binaries import free_port

pytestmark = pytest.mark.anyio

TOKEN = "CCIPAT_e2e-secret-token-0123456789"
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


async def stop(process: Process) -> None:
    if process.returncode is None:
        process.terminate()
        with anyio.fail_after(15):
            await process.wait()


@dataclass
class Running:
    url: str
    process: Process
    log: Path
    sim: RunningSimulator

    def api_requests(self) -> int:
        total = self.sim.stats()["requests_total"]
        assert isinstance(total, int)
        return total


@asynccontextmanager
async def running_exporter(tmp_path: Path, *, slow_start: float = 0.0) -> AsyncIterator[Running]:
    config = SimConfig(projects=4, seed=2, speed=60, history=timedelta(days=1), token=TOKEN)
    async with RunningSimulator(config) as sim:
        if slow_start:
            sim.faults.add(match="getProjectBySlug", latency=slow_start)
        config_file = tmp_path / "exporter.yml"
        config_file.write_text(
            yaml.safe_dump(
                {
                    "projects": [
                        {"slug": p.slug, "branches": ["default"], "other_branches": "fold"}
                        for p in sim.world.projects
                    ],
                    # One cycle only: every API request the test sees comes from start-up.
                    "collect": {"interval": "1h"},
                    "insights": {"enabled": False},
                    # The simulator is local: no need for circleci.com's pacing.
                    "api": {"requests_per_second": 500, "burst": 100},
                }
            )
        )
        address = f"127.0.0.1:{free_port()}"
        log = tmp_path / "exporter.log"
        env = {"CIRCLECI_TOKEN": TOKEN, "CIRCLECI_API_URL": sim.api_url, "PATH": "/usr/bin:/bin"}
        command = [str(EXPORTER), "--config", str(config_file), "--web.listen-address", address]
        with log.open("wb") as out:
            process = await anyio.open_process(
                [*command, "--log.level", "debug"], stdout=out, stderr=subprocess.STDOUT, env=env
            )
        try:
            yield Running(f"http://{address}", process, log, sim)
        finally:
            await stop(process)


async def wait_for(client: httpx.AsyncClient, url: str, status: int, within: float) -> None:
    with anyio.fail_after(within):
        while True:
            try:
                if (await client.get(url)).status_code == status:
                    return
            except httpx.TransportError:
                pass
            await anyio.sleep(0.1)


async def test_ready_after_the_first_collection_then_serves_valid_metrics(tmp_path: Path) -> None:
    async with running_exporter(tmp_path, slow_start=1.5) as exp, httpx.AsyncClient() as client:
        await wait_for(client, f"{exp.url}/healthz", 200, within=20)
        assert (await client.get(f"{exp.url}/readyz")).status_code == 503
        await wait_for(client, f"{exp.url}/readyz", 200, within=30)
        await anyio.sleep(1.5)  # the publisher renders within a second of the cycle

        text = await client.get(f"{exp.url}/metrics")
        assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
        check = await anyio.run_process(
            ["promtool", "check", "metrics"], input=text.content, check=False
        )
        assert check.returncode == 0 and not check.stdout and not check.stderr, check
        assert 'circleci_up{project="' in text.text

        om = await client.get(f"{exp.url}/metrics", headers={"Accept": OPENMETRICS})
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        assert om.text.endswith("# EOF\n") and om.text.count("# EOF") == 1
        families = {f.name: f for f in text_string_to_metric_families(om.text)}
        for name, family in families.items():
            spec = BY_NAME.get(name) or BY_NAME.get(f"{name}_total")
            assert spec is not None, f"{name} is exposed but not in the catalog"
            assert family.type in (spec.prometheus_type, "unknown"), name
            labels = {k for s in family.samples for k in s.labels} - {"le"}
            assert labels <= set(spec.labels), name
        for family in ("circleci_workflow_last_completed_status", "circleci_project_info",
                       "circleci_exporter_api_requests"):  # fmt: skip
            assert family in families


async def test_scrapes_never_call_circleci(tmp_path: Path) -> None:
    async with running_exporter(tmp_path) as exp, httpx.AsyncClient(timeout=30) as client:
        await wait_for(client, f"{exp.url}/readyz", 200, within=30)
        await anyio.sleep(1.5)
        before = exp.api_requests()
        bodies: list[int] = []

        async def scrape() -> None:
            response = await client.get(f"{exp.url}/metrics")
            assert response.status_code == 200
            bodies.append(len(response.content))

        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(scrape)
        assert len(bodies) == 100
        assert exp.api_requests() == before


async def test_token_appears_nowhere_and_landing_page_lists_projects(tmp_path: Path) -> None:
    async with running_exporter(tmp_path) as exp, httpx.AsyncClient() as client:
        await wait_for(client, f"{exp.url}/readyz", 200, within=30)
        await anyio.sleep(1.5)
        landing = (await client.get(f"{exp.url}/")).text
        metrics = (await client.get(f"{exp.url}/metrics")).text
        for project in exp.sim.world.projects:
            assert project.slug in landing
        assert 'href="/metrics"' in landing
        assert exp.api_requests() > 0  # the simulator demanded the token and got it
        await stop(exp.process)
        log = exp.log.read_text()
        assert "level=debug" in log  # debug logging was on, so the check below means something
        for text in (landing, metrics, log):
            assert TOKEN not in text
        assert "Traceback" not in log
