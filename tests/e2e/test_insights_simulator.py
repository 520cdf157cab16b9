"""The Insights collector against the simulator: exact values, and live polling kept on cadence
while a sweep runs under a low rate limit with slow Insights endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest

from exporter.collect.insights import InsightsCollector
from exporter.collect.live import LiveCollector
from exporter.components import Components, build_components
from exporter.metrics import render
from exporter.settings import Settings, load_settings
from exporter.simulator import RunningSimulator, SimClock, SimConfig
from exporter.state import State
from exporter.state.insights import InsightsStore
from tests.conftest import exposition_samples

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

FAST = {"requests_per_second": 1000, "burst": 1000}

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
WINDOW = "last-30-days"
BRANCHES = ["default", "release/*", "feature/*"]
STATS = (
    ("min", "min"),
    ("mean", "mean"),
    ("median", "median"),
    ("p95", "p95"),
    ("max", "max"),
    ("stddev", "standard_deviation"),
)
INSIGHTS_OPS = {
    "getAllInsightsBranches",
    "getProjectWorkflowMetrics",
    "getWorkflowSummary",
    "getProjectWorkflowJobMetrics",
    "getProjectWorkflowTestMetrics",
    "getFlakyTests",
    "getOrgSummaryData",
}


@dataclass
class Exporter:
    parts: Components
    live_cycles: int = 0
    every_project_polled: anyio.Event = field(default_factory=anyio.Event)

    @property
    def settings(self) -> Settings:
        return self.parts.settings

    @property
    def state(self) -> State:
        return self.parts.state

    @property
    def store(self) -> InsightsStore:
        assert self.parts.insights_store is not None
        return self.parts.insights_store

    @property
    def live(self) -> LiveCollector:
        return self.parts.live

    @property
    def insights(self) -> InsightsCollector:
        assert self.parts.insights is not None
        return self.parts.insights

    def count_cycle(self) -> None:
        self.live_cycles += 1
        if self.live_cycles >= len(self.settings.projects):
            self.every_project_polled.set()

    def exposition(self) -> str:
        snapshot = self.state.snapshot(T0.timestamp())
        intervals = {"live": 30.0, "insights": 900.0}
        return render(snapshot, intervals, self.store.snapshot()).text.decode()


@asynccontextmanager
async def exporter(
    sim: RunningSimulator, api: dict[str, Any] | None = None, **collect: Any
) -> AsyncIterator[Exporter]:
    """The exporter's parts, on the simulator's clock; `api`: the rate limit (fast by
    default). The caller runs `live.run()` when it wants live polling."""
    settings = load_settings(
        None,
        {
            "api": {"url": sim.api_url, "token": sim.token, "max_retries": 0, **(api or FAST)},
            "projects": [{"slug": p.slug, "branches": BRANCHES} for p in sim.world.projects],
            "collect": {"insights_window": WINDOW, **collect},
            "insights": {"enabled": True},
        },
    )
    clock = sim.world.clock
    async with build_components(settings, clock=lambda: clock.now().timestamp()) as parts:
        result = Exporter(parts)
        parts.live.on_cycle = result.count_cycle
        yield result


@asynccontextmanager
async def simulator(
    history: timedelta = timedelta(days=20), **config: Any
) -> AsyncIterator[RunningSimulator]:
    sim_config = SimConfig(projects=3, history=history, **config)
    async with RunningSimulator(sim_config, clock=SimClock.manual(T0)) as sim:
        yield sim


class Truth:
    """What the simulator's endpoints answer, read as raw JSON (not through the client)."""

    def __init__(self, sim: RunningSimulator) -> None:
        self._http = httpx.AsyncClient(
            base_url=sim.api_url + "/v2", headers={"Circle-Token": sim.token}
        )

    async def get(self, path: str, **params: str) -> Any:
        response = await self._http.get(path, params=params)
        response.raise_for_status()
        return response.json()

    async def items(self, path: str, **params: str) -> list[Any]:
        items: list[Any] = []
        token: str | None = None
        while True:
            page = await self.get(path, **params, **({"page-token": token} if token else {}))
            items.extend(page["items"])
            token = page.get("next_page_token")
            if not token:
                return items

    async def aclose(self) -> None:
        await self._http.aclose()


async def test_every_workflow_and_job_value_is_what_the_simulator_answers() -> None:
    async with simulator() as sim, exporter(sim) as exp:
        await exp.insights.sweep()
        got = exposition_samples(exp.exposition())
        truth = Truth(sim)
        checked = 0
        for project in sim.world.projects:
            known = (await truth.get(f"/insights/{project.slug}/branches"))["branches"]
            assert got["circleci_insights_branches", frozenset({("project", project.slug)})] == len(
                known
            )
            tracked = [b for b in known if b.startswith(("release/", "feature/"))]
            scopes = [(project.default_branch, {}), *((b, {"branch": b}) for b in tracked)]
            for branch, scope in scopes:
                workflows = await truth.items(
                    f"/insights/{project.slug}/workflows", **scope, **{"reporting-window": WINDOW}
                )
                for item in workflows:
                    m = item["metrics"]
                    labels = {
                        ("project", project.slug),
                        ("branch", branch),
                        ("workflow", item["name"]),
                        ("window", WINDOW),
                    }
                    key = frozenset(labels)
                    assert got["circleci_insights_workflow_runs", key] == m["total_runs"]
                    assert got["circleci_insights_workflow_failed_runs", key] == m["failed_runs"]
                    assert got["circleci_insights_workflow_success_rate", key] == pytest.approx(
                        m["success_rate"]
                    )
                    assert got["circleci_insights_workflow_throughput_per_day", key] == (
                        pytest.approx(m["throughput"])
                    )
                    for stat, field in STATS:
                        stat_key = frozenset(labels | {("stat", stat)})
                        exposed = got.get(("circleci_insights_workflow_duration_seconds", stat_key))
                        assert exposed == m["duration_metrics"].get(field)
                    mttr = got.get(("circleci_insights_workflow_mttr_seconds", key))
                    assert mttr == (m.get("mttr") if m["failed_runs"] else None)
                    checked += 1
        assert checked >= 4  # the world has several workflows on several branches
        await truth.aclose()


async def test_trends_tests_and_flaky_tests_match_the_simulator() -> None:
    async with simulator() as sim, exporter(sim) as exp:
        await exp.insights.sweep()
        got = exposition_samples(exp.exposition())
        truth = Truth(sim)
        project = sim.world.projects[0]
        workflow = project.workflows[0].name
        base = {("project", project.slug), ("branch", project.default_branch)}
        base |= {("workflow", workflow)}

        summary = await truth.get(f"/insights/{project.slug}/workflows/{workflow}/summary")
        for metric, ratio in summary["trends"].items():
            if ratio is not None:
                key = frozenset(base | {("metric", metric)})
                assert got["circleci_insights_workflow_trend", key] == pytest.approx(ratio)

        tests = await truth.get(f"/insights/{project.slug}/workflows/{workflow}/test-metrics")
        assert got["circleci_insights_test_runs", frozenset(base)] == tests["total_test_runs"]
        exposed_failed = {
            dict(labels)["test"]: v
            for (name, labels), v in got.items()
            if name == "circleci_insights_test_failed_runs" and base <= labels
        }
        expected = sorted(tests["most_failed_tests"], key=lambda t: -t["failed_runs"])
        assert len(exposed_failed) == min(20, len(expected))
        assert min(exposed_failed.values(), default=0) >= (
            expected[len(exposed_failed) - 1]["failed_runs"] if exposed_failed else 0
        )

        flaky = await truth.get(f"/insights/{project.slug}/flaky-tests")
        total = ("circleci_insights_flaky_tests", frozenset({("project", project.slug)}))
        assert got[total] == flaky["total_flaky_tests"]
        for test in flaky["flaky_tests"][:5]:
            labels = {
                ("project", project.slug),
                ("workflow", test["workflow_name"]),
                ("job", test["job_name"]),
                ("test", test["test_name"]),
                ("classname", test.get("classname") or ""),
            }
            times = got.get(("circleci_insights_flaky_test_times_flaked", frozenset(labels)))
            assert times is not None and times >= test["times_flaked"]
        await truth.aclose()


async def test_kebab_case_flaky_tests_give_the_same_numbers() -> None:
    totals: list[dict[str, float]] = []
    for casing in ("snake", "kebab"):
        async with (
            simulator(flaky_tests_casing=casing) as sim,
            exporter(sim) as exp,
        ):
            await exp.insights.sweep()
            totals.append(
                {
                    str(sorted(labels)): v
                    for (name, labels), v in exposition_samples(exp.exposition()).items()
                    if name.startswith("circleci_insights_flaky_test")
                }
            )
    assert totals[0] and totals[0] == totals[1]


async def test_org_summary_rows_and_collection_health() -> None:
    async with simulator() as sim, exporter(sim) as exp:
        await exp.insights.sweep()
        got = exposition_samples(exp.exposition())
        org = sim.world.projects[0].organization.slug
        summary = await Truth(sim).get(f"/insights/{org}/summary", **{"reporting-window": WINDOW})
        key = frozenset({("org", org), ("window", WINDOW)})
        assert (
            got["circleci_insights_org_runs", key] == summary["org_data"]["metrics"]["total_runs"]
        )
        assert (
            got["circleci_insights_org_runtime_seconds", key]
            == (summary["org_data"]["metrics"]["total_duration_secs"])
        )
        for row in summary["org_project_data"]:
            labels = key | {("project", f"{org}/{row['project_name']}")}
            assert got["circleci_insights_project_runs", labels] == row["metrics"]["total_runs"]
        for project in sim.world.projects:
            health = frozenset({("project", project.slug), ("collector", "insights")})
            assert got["circleci_exporter_last_success_timestamp_seconds", health] == (
                T0.timestamp()
            )
            assert got["circleci_exporter_collect_errors_total", health] == 0


async def test_exposition_passes_promtool_with_no_finding() -> None:
    async with simulator() as sim, exporter(sim) as exp:
        await exp.insights.sweep()
        result = await anyio.run_process(
            ["promtool", "check", "metrics"], input=exp.exposition().encode(), check=False
        )
    findings = [line for line in result.stderr.decode().splitlines() if line.strip()]
    assert result.returncode == 0 and findings == [], findings


async def test_a_failing_project_keeps_its_values_and_counts_errors() -> None:
    async with simulator() as sim, exporter(sim) as exp:
        await exp.insights.sweep()
        before = exp.store.snapshot().projects
        sim.faults.add(match="getFlakyTests", error_ratio=1.0)
        await exp.insights.sweep()
        after = exp.store.snapshot().projects
        assert after == before
        for project in sim.world.projects:
            row = exp.state.snapshot(T0.timestamp()).collections[project.slug, "insights"]
            assert (row.up, row.errors) == (False, 1)


async def test_live_polling_keeps_its_cadence_while_a_sweep_runs() -> None:
    """A low shared rate limit and slow Insights endpoints: the sweep needs many seconds, and
    live cycles keep coming at their interval meanwhile, because the sweep's requests wait in
    the limiter one at a time."""
    rate = 20.0
    interval = 0.25
    slow = {"requests_per_second": rate, "burst": 1, "max_concurrency": 8}
    # A short history and lookback keep the live start-up read (at the low rate) short.
    async with (
        simulator(history=timedelta(days=1)) as sim,
        exporter(sim, slow, interval=interval, lookback="2h") as exp,
    ):
        sim.faults.add(match="/api/v2/insights/*", latency=0.05)
        async with anyio.create_task_group() as tg:
            tg.start_soon(exp.live.run)
            # The start-up history read first: afterwards a live cycle is one request.
            await exp.every_project_polled.wait()
            before = sim.stats()["requests"]
            assert isinstance(before, dict)
            cycles_at_start = exp.live_cycles
            await exp.insights.sweep()
            cycles_during_sweep = exp.live_cycles - cycles_at_start
            tg.cancel_scope.cancel()
        after = sim.stats()["requests"]
        assert isinstance(after, dict)
    insights_requests = sum(after[op] - before.get(op, 0) for op in after if op in INSIGHTS_OPS)
    # The limiter lets `rate` requests a second through, so the sweep lasted at least this many
    # live intervals; a sweep that queued its requests all at once would leave the live
    # collector about one cycle per project in that time.
    intervals_spanned = insights_requests / rate / interval
    assert intervals_spanned >= 8
    projects = len(exp.live.projects)
    assert cycles_during_sweep >= projects * intervals_spanned / 3
