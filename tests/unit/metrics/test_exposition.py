"""The exposition writer: both formats parse back to the same samples, escape label values,
and pass the real promtool."""

from __future__ import annotations

import subprocess

from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.metrics import render
from exporter.state import Buckets, State, updates
from tests.conftest import exposition_samples

P = "gh/acme/api"
ODD = 'feat/"quoted" back\\slash\nnewline'


def rendered() -> tuple[str, str]:
    state = State(watch_start=0.0, buckets=Buckets((60.0,), (60.0,), (5.0,)), series_ttl=1e9)
    state.apply(updates.ProjectUpdate(P, "api", "acme", "main", "https://app.circleci.com/x"))
    state.apply(updates.PipelineUpdate(P, ODD, "p1", 1, "webhook", 10.0))
    state.apply(updates.WorkflowUpdate(P, ODD, "build", "w1", 1, "failed", 10.0, 100.0, "u"))
    state.apply(updates.WorkflowUpdate(P, "main", "build", "w2", 2, "success", 20.0, 50.0, "u"))
    state.record_success(P, "live", 123.5)
    result = render(state.snapshot(200.0), {"live": 30.0})
    return result.text.decode(), result.openmetrics.decode() + "# EOF\n"


def test_both_formats_parse_to_the_same_samples() -> None:
    text, openmetrics = rendered()
    from_text = exposition_samples(text)
    assert from_text == exposition_samples(openmetrics, openmetrics=True)
    key = ("circleci_workflow_runs_total", frozenset({
        ("project", P), ("branch", ODD), ("workflow", "build"), ("status", "failed")}))  # fmt: skip
    assert from_text[key] == 1.0
    bucket = ("circleci_workflow_duration_seconds_bucket", frozenset({
        ("project", P), ("branch", "main"), ("workflow", "build"), ("status", "success"),
        ("le", "60.0")}))  # fmt: skip
    assert from_text[bucket] == 1.0
    up = ("circleci_exporter_last_success_timestamp_seconds",
          frozenset({("project", P), ("collector", "live")}))  # fmt: skip
    assert from_text[up] == 123.5


def test_counter_headers_follow_each_format() -> None:
    text, openmetrics = rendered()
    assert "# TYPE circleci_workflow_runs_total counter" in text
    assert "# TYPE circleci_workflow_runs counter" in openmetrics
    assert "\ncircleci_workflow_runs_total{" in openmetrics


def test_series_count_is_exposed() -> None:
    text, _ = rendered()
    counted = sum(len(f.samples) for f in parse_text(text) if f.name != "circleci_exporter_series")
    assert f"circleci_exporter_series {float(counted)!r}" in text


def test_promtool_finds_nothing() -> None:
    text, _ = rendered()
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=60
    )
    assert check.returncode == 0 and not check.stdout and not check.stderr, check


def test_watch_start_is_exposed() -> None:
    """A backfill reads this to stop before the first run the live counters count."""
    state = State(watch_start=1234.5, buckets=Buckets((60.0,), (60.0,), (5.0,)), series_ttl=1e9)
    text = render(state.snapshot(2000.0), {"live": 30.0}).text.decode()
    assert "circleci_exporter_watch_start_timestamp_seconds 1234.5\n" in text
