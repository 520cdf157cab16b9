"""History on day one, end to end with the real binaries: the live exporter starts watching,
`circleci-exporter backfill` rebuilds the two hours before from the simulator's Insights run
lists and has the real promtool turn them into blocks, the real Prometheus starts on that
data dir and scrapes the live exporter. Prometheus then answers over the backfilled range and
across the seam as the simulator's history says it should."""

from __future__ import annotations

import itertools
import math
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml
from anyio.abc import Process

from exporter.simulator import RunningSimulator, SimConfig, World
from tests.conftest import EXPORTER
from tests.rules.binaries import find_binary, free_port, prometheus_config_for_test

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

TOKEN = "CCIPAT_backfill-e2e-0123456789"
SINCE = 7200.0  # two hours: at speed 120, the simulator's last ten days
# At speed 120 a 10-minute workflow lasts 5 s: buckets that resolve such durations.
WORKFLOW_BUCKETS = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 30.0, 60.0]
JOB_BUCKETS = [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0]
INSIGHTS_STATUSES = ("success", "failed", "error", "canceled", "unauthorized")
LIVE_SECONDS = 150.0  # at most: the live exporter scraped until it counted runs


async def stop(process: Process) -> None:
    if process.returncode is None:
        process.terminate()
        with anyio.fail_after(15):
            await process.wait()


@asynccontextmanager
async def started(
    name: str, command: list[str], url: str, tmp_path: Path, env: dict[str, str] | None = None
) -> AsyncIterator[Process]:
    """`command` running until the block ends, once `url` answers 200."""
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        process = await anyio.open_process(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        async with httpx.AsyncClient() as client:
            with anyio.fail_after(60):
                while True:
                    assert process.returncode is None, f"{name} exited:\n{log.read_text()}"
                    try:
                        if (await client.get(url)).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await anyio.sleep(0.2)
        yield process
    finally:
        await stop(process)


class Prometheus:
    def __init__(self, url: str) -> None:
        self.client = httpx.AsyncClient(base_url=url, timeout=30.0)

    async def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        response = await self.client.get("/api/v1/query", params={"query": expr, "time": at})
        body = response.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def query_range(
        self, expr: str, start: float, end: float, step: float
    ) -> list[dict[str, Any]]:
        params = {"query": expr, "start": start, "end": end, "step": step}
        body = (await self.client.get("/api/v1/query_range", params=params)).json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


def history(world: World, start: float, end: float) -> dict[tuple[str, str, str], list[float]]:
    """(project, workflow, status) → durations of the runs completed in [start, end) on the
    default branch, as the simulator planned them."""
    found: dict[tuple[str, str, str], list[float]] = {}
    for project in world.projects:
        for workflow in world.workflows(project.slug, project.default_branch):
            stopped = workflow.stopped_at.timestamp()
            if workflow.final_status in INSIGHTS_STATUSES and start <= stopped < end:
                key = (project.slug, workflow.name, workflow.final_status)
                found.setdefault(key, []).append(workflow.duration_seconds)
    return found


def key_of(metric: dict[str, str]) -> tuple[str, str, str]:
    return (metric["project"], metric["workflow"], metric["status"])


async def test_backfilled_history_meets_the_live_series(tmp_path: Path) -> None:
    config = SimConfig(projects=4, seed=11, speed=120, history=timedelta(days=11), token=TOKEN)
    async with RunningSimulator(config) as sim:
        world = sim.world
        address = f"127.0.0.1:{free_port()}"
        config_file = tmp_path / "exporter.yml"
        config_file.write_text(
            yaml.safe_dump(
                {
                    "projects": [{"slug": p.slug} for p in world.projects],
                    "collect": {"interval": "1s"},
                    "insights": {"enabled": False},
                    "api": {"requests_per_second": 500, "burst": 100},
                    "metrics": {
                        "workflow_duration_buckets": WORKFLOW_BUCKETS,
                        "job_duration_buckets": JOB_BUCKETS,
                    },
                }
            )
        )
        env = {"CIRCLECI_TOKEN": TOKEN, "CIRCLECI_API_URL": sim.api_url, "PATH": "/usr/bin:/bin"}
        exporter = [str(EXPORTER), "--config", str(config_file), "--web.listen-address", address]
        async with started("exporter", exporter, f"http://{address}/readyz", tmp_path, env):
            data_dir = tmp_path / "prometheus-data"
            om = tmp_path / "history.om"
            backfill = await anyio.run_process(
                [
                    str(EXPORTER), "backfill", "--config", str(config_file),
                    "--since", "2h", "--step", "30s", "--out", str(om),
                    "--exporter-url", f"http://{address}/metrics",
                    "--label", "job=circleci", "--label", f"instance={address}",
                    "--promtool-dir", str(data_dir), "--promtool", find_binary("promtool"),
                ],
                env=env, check=False,
            )  # fmt: skip
            assert backfill.returncode == 0, backfill.stderr.decode()
            assert any(data_dir.iterdir()), "promtool wrote no block"
            async with httpx.AsyncClient() as client:
                metrics = (await client.get(f"http://{address}/metrics")).text
            end = float(
                next(
                    line.split()[1]
                    for line in metrics.splitlines()
                    if line.startswith("circleci_exporter_watch_start_timestamp_seconds ")
                )
            )
            start = end - SINCE
            port = free_port()
            prometheus_yml = prometheus_config_for_test(
                tmp_path, exporter_targets=[address], alertmanager_targets=[], rule_files=[]
            )
            command = [
                find_binary("prometheus"), f"--config.file={prometheus_yml}",
                f"--storage.tsdb.path={data_dir}", f"--web.listen-address=127.0.0.1:{port}",
            ]  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            async with started("prometheus", command, f"{url}/-/ready", tmp_path):
                prometheus = Prometheus(url)
                await wait_for_live_runs(prometheus, end)
                await anyio.sleep(10.0)  # a few more runs and scrapes after the first
                truth = history(world, start, end)
                await check_backfilled_range(prometheus, truth, end)
                await check_the_seam(prometheus, end)


async def wait_for_live_runs(prometheus: Prometheus, end: float) -> None:
    """Until Prometheus scraped a run the live exporter counted after the seam."""
    expr = f"max(timestamp(circleci_workflow_runs_total)) > {end}"
    for _ in range(int(LIVE_SECONDS / 2)):
        if await prometheus.query(expr, time.time()):
            return
        await anyio.sleep(2.0)
    raise AssertionError(f"the live exporter counted no run in {LIVE_SECONDS:.0f}s")


async def check_backfilled_range(
    prometheus: Prometheus, truth: dict[tuple[str, str, str], list[float]], end: float
) -> None:
    # Counted up to the watch start: exactly the simulator's runs of the backfilled range.
    increases = await prometheus.query(
        "sum by (project, workflow, status) (increase(circleci_workflow_runs_total[7d]))", end
    )
    found = {key_of(r["metric"]): float(r["value"][1]) for r in increases}
    expected = {key: len(durations) for key, durations in truth.items()}
    assert found.keys() == expected.keys()
    for key, count in expected.items():
        assert found[key] == pytest.approx(count, abs=0.01), key
    assert sum(expected.values()) > 50, "two hours at speed 120 should hold many runs"
    # The median from the backfilled histogram lies in the bucket of the runs' median.
    checked = 0
    for (project, workflow, status), durations in truth.items():
        if len(durations) < 5:
            continue
        selector = f'project="{project}",workflow="{workflow}",status="{status}"'
        expr = (
            "histogram_quantile(0.5, sum by (le) (increase("
            f"circleci_workflow_duration_seconds_bucket{{{selector}}}[7d])))"
        )
        (result,) = await prometheus.query(expr, end)
        estimate = float(result["value"][1])
        ordered = sorted(durations)
        median = ordered[math.ceil(0.5 * len(ordered)) - 1]
        bounds = [0.0, *WORKFLOW_BUCKETS, math.inf]
        upper = next(i for i, bound in enumerate(bounds) if median <= bound)
        assert bounds[upper - 1] <= estimate <= bounds[upper], (project, workflow, status)
        checked += 1
    assert checked > 0


async def check_the_seam(prometheus: Prometheus, end: float) -> None:
    # The last scrape: queries there need no extrapolation to the end of their range.
    (latest,) = await prometheus.query("max(timestamp(circleci_workflow_runs_total))", time.time())
    now = float(latest["value"][1])
    assert now > end
    # The gauges are served live from the first cycle: a range query across the seam has a
    # point at every step for each series the backfill had at the start of the range.
    window = (end - 600.0, now, 5.0)
    statuses = await prometheus.query_range("circleci_workflow_last_completed_status", *window)
    continued = [s for s in statuses if abs(float(s["values"][0][0]) - window[0]) < 0.01]
    assert continued
    for series in continued:
        times = [float(t) for t, _ in series["values"]]
        assert all(abs(b - a - window[2]) < 0.01 for a, b in itertools.pairwise(times)), (
            "gap",
            series["metric"],
        )
        assert times[-1] > end + 5.0, ("not served live after the seam", series["metric"])
    # Counters reset to zero at the seam; rate() takes that in its stride.
    rates = await prometheus.query_range("rate(circleci_workflow_runs_total[1m])", *window)
    assert rates and all(float(v) >= 0 for r in rates for _, v in r["values"])
    # increase() over a window spanning the seam: the backfilled runs plus the live ones.
    before = {
        key_of(r["metric"]): float(r["value"][1])
        for r in await prometheus.query("circleci_workflow_runs_total", end)
    }
    after = {
        key_of(r["metric"]): float(r["value"][1])
        for r in await prometheus.query("circleci_workflow_runs_total", now)
    }
    spanning = {
        key_of(r["metric"]): float(r["value"][1])
        for r in await prometheus.query("increase(circleci_workflow_runs_total[7d])", now)
    }
    # A reset shows as a fall: where the live count is still below the backfilled one.
    across = [key for key in before.keys() & after.keys() if after[key] < before[key]]
    assert across, "no series counted runs both before and after the seam"
    for key in across:
        assert spanning[key] == pytest.approx(before[key] + after[key], abs=0.01), key
    assert sum(after[key] for key in across) > 0, "the live exporter counted runs"
