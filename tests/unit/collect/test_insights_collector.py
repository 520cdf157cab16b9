"""The Insights collector against respx-served fixtures shaped like CircleCI's answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio.lowlevel
import httpx
import pytest
import respx
from prometheus_client import CollectorRegistry

from exporter.circleci import ApiTelemetry, CircleCIClient, RateLimiter
from exporter.collect.branches import BranchPolicy
from exporter.collect.insights import InsightsCollector, project_slug_of
from exporter.collect.telemetry import CollectTelemetry
from exporter.settings import EffectiveBranchRules, Settings, load_settings
from exporter.state import Buckets, State
from exporter.state.insights import InsightsStore, ProjectInsights
from tests import fixtures

API_ROOT = "https://circleci.com/api"
FIXTURES = fixtures.INSIGHTS
PROJECT = "gh/acme/api"
NOW = 1_764_000_000.0
INSIGHTS = f"/api/v2/insights/{PROJECT}"

# (path, branch query, page token) → fixture; what the fake API answers.
ANSWERS: dict[tuple[str, str | None, str | None], str] = {
    (f"{INSIGHTS}/branches", None, None): "branches.json",
    (f"{INSIGHTS}/workflows", None, None): "workflows.main.json",
    (f"{INSIGHTS}/workflows", None, "eyJwYWdlIjoyfQ"): "workflows.main.page2.json",
    (f"{INSIGHTS}/workflows", "release/1.2", None): "workflows.release.json",
    (f"{INSIGHTS}/workflows/build-and-test/summary", None, None): "summary.build-and-test.json",
    (f"{INSIGHTS}/workflows/deploy/summary", None, None): "summary.deploy.json",
    (f"{INSIGHTS}/workflows/build-and-test/summary", "release/1.2", None): "summary.release.json",
    (f"{INSIGHTS}/workflows/build-and-test/jobs", None, None): "jobs.build-and-test.json",
    (f"{INSIGHTS}/workflows/build-and-test/jobs", None, "eyJwYWdlIjoyfQ"): (
        "jobs.build-and-test.page2.json"
    ),
    (f"{INSIGHTS}/workflows/deploy/jobs", None, None): "jobs.deploy.json",
    (f"{INSIGHTS}/workflows/build-and-test/jobs", "release/1.2", None): "jobs.release.json",
    (f"{INSIGHTS}/workflows/build-and-test/test-metrics", None, None): (
        "test-metrics.build-and-test.json"
    ),
    (f"{INSIGHTS}/workflows/deploy/test-metrics", None, None): "test-metrics.empty.json",
    (f"{INSIGHTS}/workflows/build-and-test/test-metrics", "release/1.2", None): (
        "test-metrics.empty.json"
    ),
    (f"{INSIGHTS}/flaky-tests", None, None): "flaky-tests.snake.json",
    ("/api/v2/insights/gh/acme/summary", None, None): "org-summary.json",
    (f"/api/v2/project/{PROJECT}", None, None): "project.json",
}


class FakeInsightsApi:
    """Answers from ANSWERS (404 for anything else), records every request, and counts how many
    were in flight at once."""

    def __init__(self) -> None:
        self.answers = dict(ANSWERS)
        self.failing: set[str] = set()
        self.requests: list[httpx.Request] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await anyio.lowlevel.checkpoint()  # lets a concurrent request start
            path = request.url.path
            if path in self.failing:
                return httpx.Response(500, json={"message": "Internal server error"})
            params = request.url.params
            key = (path, params.get("branch"), params.get("page-token"))
            if key not in self.answers:
                return httpx.Response(404, json={"message": "Not found"})
            body = json.loads((FIXTURES / self.answers[key]).read_text())
            return httpx.Response(200, json=body)
        finally:
            self.in_flight -= 1

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


@pytest.fixture
def fake_api() -> Iterator[FakeInsightsApi]:
    fake = FakeInsightsApi()
    with respx.mock(base_url=API_ROOT, assert_all_called=False) as router:
        router.route().mock(side_effect=fake)
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[CircleCIClient]:
    async with CircleCIClient(
        API_ROOT,
        None,
        limiter=RateLimiter(1000.0, 1000, 16),
        telemetry=ApiTelemetry(CollectorRegistry()),
        max_retries=0,
    ) as api_client:
        yield api_client


def make_settings(**insights: Any) -> Settings:
    return load_settings(
        None,
        {
            "projects": [{"slug": PROJECT, "branches": ["default", "release/*"]}],
            "insights": insights,
        },
    )


def make_state() -> State:
    return State(
        watch_start=NOW - 3600,
        buckets=Buckets((10.0,), (10.0,), (1.0,)),
        series_ttl=7 * 86400.0,
    )


def tracked_policy(default_branch: str | None = "main") -> BranchPolicy:
    return BranchPolicy(EffectiveBranchRules(branches=["default", "release/*"]), default_branch)


class Harness:
    def __init__(self, client: CircleCIClient, settings: Settings) -> None:
        self.state = make_state()
        self.store = InsightsStore()
        self.sweeps_published = 0
        self.tracked: dict[str, BranchPolicy] = {PROJECT: tracked_policy()}
        self.collector = InsightsCollector(
            settings,
            client=client,
            state=self.state,
            store=self.store,
            tracked=lambda: self.tracked,
            orgs=lambda: {slug.rsplit("/", 1)[0] for slug in self.tracked},
            on_sweep=self._published,
            telemetry=CollectTelemetry(CollectorRegistry()),
            clock=lambda: NOW,
        )

    def _published(self) -> None:
        self.sweeps_published += 1

    def project(self) -> ProjectInsights:
        return self.store.snapshot().projects[PROJECT]


@pytest.fixture
def harness(client: CircleCIClient) -> Callable[..., Harness]:
    def _make(**insights: Any) -> Harness:
        return Harness(client, make_settings(**insights))

    return _make


@pytest.mark.anyio
async def test_reads_the_default_branch_and_the_tracked_branches_insights_knows(
    harness: Callable[..., Harness], fake_api: FakeInsightsApi
) -> None:
    h = harness()
    await h.collector.collect_project(PROJECT, tracked_policy())

    p = h.project()
    # feature/login and the dependabot branch match no pattern: never asked for.
    assert set(p.workflows) == {
        ("main", "build-and-test"),
        ("main", "deploy"),
        ("release/1.2", "build-and-test"),
    }
    assert not any("feature" in str(r.url) or "dependabot" in str(r.url) for r in fake_api.requests)
    # The default scope is asked for without `branch` (Insights' own default), labelled "main".
    default_scope = [r for r in fake_api.requests if r.url.path == f"{INSIGHTS}/workflows"]
    assert [r.url.params.get("branch") for r in default_scope] == [None, None, "release/1.2"]
    assert {r.url.params["reporting-window"] for r in default_scope} == {"last-30-days"}
    assert p.window == "last-30-days"
    assert p.branches == 4


@pytest.mark.anyio
async def test_workflow_stats_keep_api_units_and_leave_out_what_is_missing(
    harness: Callable[..., Harness], fake_api: FakeInsightsApi
) -> None:
    h = harness()
    await h.collector.collect_project(PROJECT, tracked_policy())

    build = h.project().workflows["main", "build-and-test"]
    assert (build.stats.runs, build.stats.successful_runs, build.stats.failed_runs) == (
        412,
        377,
        35,
    )
    assert build.stats.success_rate == 0.915
    assert build.stats.throughput_per_day == 13.73
    assert build.stats.credits_used == 1835220
    assert build.mttr_seconds == 3120
    assert dict(build.stats.durations) == {
        "min": 412,
        "mean": 530,
        "median": 511,
        "p95": 702,
        "max": 915,
        "stddev": 88.4,
    }
    deploy = h.project().workflows["main", "deploy"]
    # No failures: MTTR is absent even though this answer says 0.
    assert deploy.mttr_seconds is None
    assert deploy.stats.credits_used is None
    assert "stddev" not in deploy.stats.durations
    assert h.project().workflows["release/1.2", "build-and-test"].mttr_seconds == 5400


@pytest.mark.anyio
async def test_trends_are_the_summary_ratios_as_given(
    harness: Callable[..., Harness], fake_api: FakeInsightsApi
) -> None:
    h = harness()
    await h.collector.collect_project(PROJECT, tracked_policy())

    trends = h.project().trends
    assert {k[2]: v for k, v in trends.items() if k[:2] == ("main", "build-and-test")} == {
        "total_runs": 1.08,
        "failed_runs": 0.81,
        "success_rate": 1.02,
        "p95_duration_secs": 0.97,
        "median_duration_secs": 1.0,
        "total_credits_used": 1.1,
        "mttr": -1.0,
        "throughput": 1.08,
    }
    # A null trend and missing trends have no value.
    assert {k[2]: v for k, v in trends.items() if k[:2] == ("main", "deploy")} == {
        "total_runs": 0.95,
        "success_rate": 1.0,
        "throughput": 0.95,
    }
    assert trends["release/1.2", "build-and-test", "mttr"] == 1.2


@pytest.mark.anyio
async def test_job_metrics_from_every_page(
    harness: Callable[..., Harness], fake_api: FakeInsightsApi
) -> None:
    h = harness()
    await h.collector.collect_project(PROJECT, tracked_policy())

    jobs = h.project().jobs
    assert set(jobs) == {
        ("main", "build-and-test", "test"),
        ("main", "build-and-test", "lint"),
        ("main", "deploy", "deploy-prod"),
        ("release/1.2", "build-and-test", "test"),
    }
    lint = jobs["main", "build-and-test", "lint"]
    assert (lint.runs, lint.failed_runs, lint.success_rate) == (412, 2, 0.9951)
    assert lint.credits_used is None
    assert jobs["release/1.2", "build-and-test", "test"].durations["p95"] == 530


@pytest.mark.anyio
async def test_test_metrics_keyed_by_job_test_and_classname(
    harness: Callable[..., Harness], fake_api: FakeInsightsApi
) -> None:
    h = harness()
    await h.collector.collect_project(PROJECT, tracked_policy())

    p = h.project()
    assert dict(p.test_runs) == {
        ("main", "build-and-test"): 10,
        ("main", "deploy"): 0,
        ("release/1.2", "build-and-test"): 0,
    }
    prefix = ("main", "build-and-test", "test")
    assert dict(p.failed_tests) == {
        (*prefix, "test_login_redirect", "tests.web.test_auth"): 4,
        (*prefix, "renders the header", ""): 3,  # no classname in the answer
        (*prefix, "test_checkout_total", "tests.shop.test_cart"): 2,
        (*prefix, "test_migrations", "tests.db"): 1,
    }
    # The same test from two files is one series (the higher value); no p95, no series.
    assert dict(p.slow_tests) == {
        (*prefix, "test_full_import", "tests.etl.test_import"): 48.7,
        (*prefix, "test_report_pdf", "tests.reports"): 13.5,
    }


@pytest.mark.anyio
@pytest.mark.parametrize("casing", ["snake", "kebab"])
async def test_flaky_tests_in_either_casing(
    casing: str, harness: Callable[..., Harness], fake_api: FakeInsightsApi
) -> None:
    fake_api.answers[f"{INSIGHTS}/flaky-tests", None, None] = f"flaky-tests.{casing}.json"
    h = harness()
    await h.collector.collect_project(PROJECT, tracked_policy())

    p = h.project()
    assert p.flaky_total == 3
    assert dict(p.flaky_tests) == {
        ("nightly", "db-maintenance", "test_vacuum", "tests.db"): 9,
        ("build-and-test", "test", "test_login_redirect", "tests.web.test_auth"): 6,
        ("build-and-test", "test", "renders the header", ""): 2,
    }


@pytest.mark.anyio
async def test_test_series_are_capped_highest_first(
    harness: Callable[..., Harness], fake_api: FakeInsightsApi
) -> None:
    h = harness(top_tests=2, top_flaky_tests=1)
    await h.collector.collect_project(PROJECT, tracked_policy())

    p = h.project()
    assert sorted(k[3] for k in p.failed_tests) == ["renders the header", "test_login_redirect"]
    assert sorted(k[3] for k in p.slow_tests) == ["test_full_import", "test_report_pdf"]
    assert list(p.flaky_tests) == [("nightly", "db-maintenance", "test_vacuum", "tests.db")]
    assert p.flaky_total == 3  # the total is CircleCI's, not the capped count


@pytest.mark.anyio
async def test_reads_the_default_branch_name_when_the_live_collector_has_not(
    harness: Callable[..., Harness], fake_api: FakeInsightsApi
) -> None:
    h = harness()
    await h.collector.collect_project(PROJECT, tracked_policy(default_branch=None))

    assert f"/api/v2/project/{PROJECT}" in fake_api.paths()
    assert ("main", "deploy") in h.project().workflows


@pytest.mark.anyio
async def test_success_is_recorded_under_the_insights_collector(
    harness: Callable[..., Harness], fake_api: FakeInsightsApi
) -> None:
    h = harness()
    await h.collector.collect_project(PROJECT, tracked_policy())

    row = h.state.snapshot(NOW).collections[PROJECT, "insights"]
    assert (row.up, row.last_success, row.errors) == (True, NOW, 0)


@pytest.mark.anyio
async def test_a_failed_sweep_keeps_the_last_values_and_counts_the_error(
    harness: Callable[..., Harness], fake_api: FakeInsightsApi
) -> None:
    h = harness()
    await h.collector.collect_project(PROJECT, tracked_policy())
    before = h.project()

    fake_api.failing.add(f"{INSIGHTS}/workflows/deploy/jobs")
    await h.collector.collect_project(PROJECT, tracked_policy())

    assert h.project() is before
    row = h.state.snapshot(NOW).collections[PROJECT, "insights"]
    assert (row.up, row.last_success, row.errors) == (False, NOW, 1)
    assert row.last_error is not None and "getProjectWorkflowJobMetrics" in row.last_error


@pytest.mark.anyio
async def test_org_summary_totals_and_project_rows(
    harness: Callable[..., Harness], fake_api: FakeInsightsApi
) -> None:
    h = harness()
    await h.collector.collect_org("gh/acme")

    org = h.store.snapshot().orgs["gh/acme"]
    assert org.window == "last-30-days"
    assert (org.totals.runs, org.totals.success_rate, org.totals.throughput_per_day) == (
        1290,
        0.902,
        43.0,
    )
    assert (org.totals.credits_used, org.totals.runtime_seconds) == (5120400, 612400)
    assert set(org.projects) == {"gh/acme/api", "gh/acme/web"}
    assert org.projects["gh/acme/web"].credits_used is None
    assert org.projects["gh/acme/api"].runtime_seconds == 218360
    request = next(r for r in fake_api.requests if r.url.path.endswith("/gh/acme/summary"))
    assert request.url.params["reporting-window"] == "last-30-days"


def test_project_names_become_slugs_only_in_oauth_orgs() -> None:
    assert project_slug_of("gh/acme", "api") == "gh/acme/api"
    assert project_slug_of("bb/acme", "web") == "bb/acme/web"
    # Standalone project slugs hold ids the org summary does not give: the name stays.
    assert project_slug_of("circleci/9a8b7c", "mobile") == "mobile"


@pytest.mark.anyio
async def test_a_sweep_covers_every_project_then_the_orgs_one_request_at_a_time(
    harness: Callable[..., Harness], fake_api: FakeInsightsApi
) -> None:
    h = harness()
    h.tracked["gh/acme/gone"] = tracked_policy()  # every request for it answers 404
    await h.collector.sweep()

    assert fake_api.max_in_flight == 1
    assert set(h.store.snapshot().projects) == {PROJECT}
    assert set(h.store.snapshot().orgs) == {"gh/acme"}
    collections = h.state.snapshot(NOW).collections
    assert collections["gh/acme/gone", "insights"].errors == 1
    assert collections[PROJECT, "insights"].up
    assert collections["gh/acme", "insights"].up
    assert h.sweeps_published == 3  # after each project, and after the orgs
    assert h.collector.sweeps == 1
    # The backfill endpoints are not on the polling cycle.
    assert not any(p.endswith("/workflows/build-and-test") for p in fake_api.paths())
    assert not any("/time-series/" in p for p in fake_api.paths())


@pytest.mark.anyio
async def test_snapshots_are_immutable_and_unaffected_by_later_sweeps(
    harness: Callable[..., Harness], fake_api: FakeInsightsApi
) -> None:
    h = harness()
    await h.collector.collect_project(PROJECT, tracked_policy())
    first = h.store.snapshot()

    workflows: Any = first.projects[PROJECT].workflows
    with pytest.raises(TypeError):
        workflows["main", "nightly"] = workflows["main", "deploy"]
    projects: Any = first.projects
    with pytest.raises(TypeError):
        del projects[PROJECT]
    h.store.replace_project(
        ProjectInsights(
            project=PROJECT,
            window="last-7-days",
            branches=0,
            workflows={},
            test_runs={},
            trends={},
            jobs={},
            failed_tests={},
            slow_tests={},
            flaky_total=0,
            flaky_tests={},
        )
    )
    assert first.projects[PROJECT].window == "last-30-days"
    assert h.store.snapshot().projects[PROJECT].window == "last-7-days"
