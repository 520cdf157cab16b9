"""Insights families rendered from an Insights snapshot: names, labels, values, HELP, promtool."""

from __future__ import annotations

import subprocess
from types import MappingProxyType

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.catalog import INSIGHTS
from exporter.metrics import render
from exporter.state import Buckets, State
from exporter.state.insights import (
    InsightsSnapshot,
    InsightsStore,
    OrgInsights,
    ProjectInsights,
    RunStats,
    UsageStats,
    WorkflowStats,
)
from tests.conftest import exposition_samples

P = "gh/acme/api"
W = "last-7-days"


def stats(runs: int, failed: int, credits: float | None, **durations: float) -> RunStats:
    return RunStats(
        runs=runs,
        successful_runs=runs - failed,
        failed_runs=failed,
        success_rate=(runs - failed) / runs,
        throughput_per_day=runs / 7,
        credits_used=credits,
        durations=durations,
    )


def project_insights() -> ProjectInsights:
    build = ("main", "build-and-test")
    return ProjectInsights(
        project=P,
        window=W,
        branches=4,
        workflows={
            build: WorkflowStats(stats(70, 7, 1200.0, min=400, p95=700, stddev=88.5), 3120.0),
            ("main", "deploy"): WorkflowStats(stats(14, 0, None, median=72), None),
        },
        test_runs={build: 10},
        trends={(*build, "mttr"): -1.0, (*build, "success_rate"): 1.02},
        jobs={(*build, "test"): stats(70, 5, 900.0, max=640)},
        failed_tests={(*build, "test", "test_login", "tests.web"): 4.0},
        slow_tests={(*build, "test", "renders the header", ""): 12.25},
        flaky_total=3,
        flaky_tests={("build-and-test", "test", "test_login", "tests.web"): 6.0},
    )


def org_insights() -> OrgInsights:
    return OrgInsights(
        org="gh/acme",
        window=W,
        totals=UsageStats(1290, 0.902, 43.0, 5120400.0, 612400.0),
        projects={
            P: UsageStats(412, 0.915, None, 1835220.0, 218360.0),
            "gh/acme/web": UsageStats(300, 0.88, None, None, 90000.0),
        },
    )


def insights_snapshot() -> InsightsSnapshot:
    store = InsightsStore()
    store.replace_project(project_insights())
    store.replace_org(org_insights())
    return store.snapshot()


def empty_state() -> State:
    return State(watch_start=0.0, buckets=Buckets((10.0,), (10.0,), (1.0,)), series_ttl=60.0)


def rendered_text(insights: InsightsSnapshot | None) -> str:
    state = empty_state()
    state.record_success(P, "insights", 1_764_000_000.0)
    intervals = {"live": 30.0, "insights": 900.0}
    return render(state.snapshot(1_764_000_000.0), intervals, insights).text.decode()


def value(text: str, name: str, **labels: str) -> float | None:
    return exposition_samples(text).get((name, frozenset(labels.items())))


def test_workflow_gauges_with_window_and_duration_stats() -> None:
    text = rendered_text(insights_snapshot())
    build = {"project": P, "branch": "main", "workflow": "build-and-test", "window": W}
    assert value(text, "circleci_insights_workflow_runs", **build) == 70
    assert value(text, "circleci_insights_workflow_successful_runs", **build) == 63
    assert value(text, "circleci_insights_workflow_failed_runs", **build) == 7
    assert value(text, "circleci_insights_workflow_success_rate", **build) == 0.9
    assert value(text, "circleci_insights_workflow_throughput_per_day", **build) == 10
    assert value(text, "circleci_insights_workflow_credits_used", **build) == 1200
    assert value(text, "circleci_insights_workflow_mttr_seconds", **build) == 3120
    durations = {
        dict(labels)["stat"]: v
        for (name, labels), v in exposition_samples(text).items()
        if name == "circleci_insights_workflow_duration_seconds"
        and dict(labels)["workflow"] == "build-and-test"
    }
    assert durations == {"min": 400, "p95": 700, "stddev": 88.5}


def test_mttr_and_credits_are_absent_not_zero() -> None:
    text = rendered_text(insights_snapshot())
    deploy = {"project": P, "branch": "main", "workflow": "deploy", "window": W}
    assert value(text, "circleci_insights_workflow_runs", **deploy) == 14
    assert value(text, "circleci_insights_workflow_mttr_seconds", **deploy) is None
    assert value(text, "circleci_insights_workflow_credits_used", **deploy) is None


def test_trends_jobs_tests_and_flaky_tests() -> None:
    text = rendered_text(insights_snapshot())
    wf = {"project": P, "branch": "main", "workflow": "build-and-test"}
    assert value(text, "circleci_insights_workflow_trend", **wf, metric="mttr") == -1.0
    assert value(text, "circleci_insights_workflow_trend", **wf, metric="success_rate") == 1.02
    job = {**wf, "job": "test", "window": W}
    assert value(text, "circleci_insights_job_failed_runs", **job) == 5
    assert value(text, "circleci_insights_job_duration_seconds", **job, stat="max") == 640
    assert value(text, "circleci_insights_test_runs", **wf) == 10
    test = {**wf, "job": "test", "test": "test_login", "classname": "tests.web"}
    assert value(text, "circleci_insights_test_failed_runs", **test) == 4
    slow = {**wf, "job": "test", "test": "renders the header", "classname": ""}
    assert value(text, "circleci_insights_test_p95_duration_seconds", **slow) == 12.25
    assert value(text, "circleci_insights_flaky_tests", project=P) == 3
    flaky = {"workflow": "build-and-test", "job": "test", "test": "test_login"}
    assert (
        value(
            text,
            "circleci_insights_flaky_test_times_flaked",
            project=P,
            **flaky,
            classname="tests.web",
        )
        == 6
    )
    assert value(text, "circleci_insights_branches", project=P) == 4


def test_org_and_project_rows() -> None:
    text = rendered_text(insights_snapshot())
    org = {"org": "gh/acme", "window": W}
    assert value(text, "circleci_insights_org_runs", **org) == 1290
    assert value(text, "circleci_insights_org_success_rate", **org) == 0.902
    assert value(text, "circleci_insights_org_throughput_per_day", **org) == 43
    assert value(text, "circleci_insights_org_credits_used", **org) == 5120400
    assert value(text, "circleci_insights_org_runtime_seconds", **org) == 612400
    web = {**org, "project": "gh/acme/web"}
    assert value(text, "circleci_insights_project_runs", **web) == 300
    assert value(text, "circleci_insights_project_runtime_seconds", **web) == 90000
    assert value(text, "circleci_insights_project_credits_used", **web) is None
    assert value(text, "circleci_insights_project_credits_used", **org, project=P) == 1835220


def test_every_family_names_the_insights_api_in_its_help() -> None:
    text = rendered_text(insights_snapshot())
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for spec in INSIGHTS:
        # The parser strips `_total` from gauge names too; look the family up either way.
        family = families.get(spec.name) or families[spec.name.removesuffix("_total")]
        assert "Insights API" in family.documentation, spec.name
        assert family.samples, f"{spec.name} has no sample in the full snapshot"
    assert "window label" in families["circleci_insights_workflow_runs"].documentation
    assert "last 10 runs" in families["circleci_insights_test_runs"].documentation


def test_without_an_insights_snapshot_no_insights_family_is_rendered() -> None:
    text = rendered_text(None)
    assert "circleci_insights_" not in text
    empty = InsightsSnapshot(MappingProxyType({}), MappingProxyType({}))
    assert "circleci_insights_" not in rendered_text(empty)


@pytest.mark.parametrize("insights", [insights_snapshot(), None], ids=["insights", "live-only"])
def test_promtool_check_metrics(insights: InsightsSnapshot | None) -> None:
    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input=rendered_text(insights).encode(),
        capture_output=True,
        check=False,
    )
    findings = [line for line in result.stderr.decode().splitlines() if line.strip()]
    assert result.returncode == 0 and findings == [], findings
