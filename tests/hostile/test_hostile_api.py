"""End to end: the exporter process against a hostile CircleCI, one misbehaviour per test
(issue 12). Each test also asserts the suite's five promises (`assert_survived`)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.hostile.fake_circleci import HOSTILE
from tests.hostile.harness import Exporter, assert_survived, exporter_against
from tests.rules.binaries import wait_until


def _requests(exporter: Exporter, endpoint: str, code: str) -> float:
    return exporter.value("circleci_exporter_api_requests_total", endpoint=endpoint, code=code) or 0


def test_a_trickling_body_times_out_and_the_other_project_stays_fresh(tmp_path: Path) -> None:
    with exporter_against("trickle", tmp_path) as exporter:
        wait_until(
            lambda: _requests(exporter, "listPipelinesForProject", "timeout") >= 1,
            "the trickling pipeline list to hit the request deadline",
            timeout=15,
        )
        wait_until(lambda: exporter.value("circleci_up", project=HOSTILE) == 0, "down", 15)
        assert_survived(exporter)


def test_an_endless_body_is_cut_at_the_size_cap(tmp_path: Path) -> None:
    with exporter_against("huge", tmp_path) as exporter:
        wait_until(
            lambda: _requests(exporter, "listPipelinesForProject", "too_large") >= 2,
            "endless pipeline lists to be cut at api.max_response_bytes",
            timeout=15,
        )
        assert "api.max_response_bytes" in exporter.log.read_text()
        assert_survived(exporter)


def test_endless_page_tokens_stop_at_the_page_cap(tmp_path: Path) -> None:
    with exporter_against("endless_pages", tmp_path) as exporter:
        hits = "circleci_exporter_api_page_limit_hits_total"
        wait_until(
            lambda: (exporter.value(hits, endpoint="listPipelinesForProject") or 0) >= 2,
            "the page cap to be hit",
            timeout=15,
        )
        cycles = exporter.value(hits, endpoint="listPipelinesForProject") or 0
        pages = exporter.fake.requests[f"/v2/project/{HOSTILE}/pipeline"]
        assert pages <= 5 * (cycles + 1)
        assert "page limit" in exporter.log.read_text()
        assert_survived(exporter)


def test_a_huge_retry_after_pauses_everything_for_the_capped_wait_only(tmp_path: Path) -> None:
    with exporter_against("rate_limited", tmp_path) as exporter:
        gauge = "circleci_exporter_rate_limited_until_timestamp_seconds"
        wait_until(lambda: (exporter.value(gauge, reason="429") or 0) > 0, "the 429 pause", 15)
        until = exporter.value(gauge, reason="429") or 0
        # max_rate_limit_wait is 2s in these tests: the 999999 s asked for is capped.
        assert until <= time.time() + 2.5
        assert exporter.value(gauge, reason="circuit_breaker") == 0
        assert_survived(exporter)


def test_a_token_echoed_in_errors_appears_nowhere(tmp_path: Path) -> None:
    with exporter_against("echo_token", tmp_path) as exporter:
        wait_until(lambda: "collection failed" in exporter.log.read_text(), "the echoing error", 15)
        assert "***" in exporter.get("/").text
        wait_until(lambda: exporter.value("circleci_up", project=HOSTILE) == 0, "down", 15)
        assert_survived(exporter)


def test_lone_surrogates_in_every_name_are_replaced_not_fatal(tmp_path: Path) -> None:
    with exporter_against("surrogates", tmp_path) as exporter:
        wait_until(lambda: exporter.value("circleci_up", project=HOSTILE) == 1, "hostile up", 15)
        wait_until(
            lambda: "build\ufffd" in exporter.get("/metrics").text, "the cleaned workflow", 15
        )
        assert exporter.value("circleci_exporter_render_errors_total") == 0
        assert_survived(exporter)


def test_far_future_timestamps_are_clamped(tmp_path: Path) -> None:
    with exporter_against("future", tmp_path) as exporter:
        gauge = "circleci_workflow_last_completed_timestamp_seconds"
        wait_until(
            lambda: (
                exporter.value(gauge, project=HOSTILE, branch="main", workflow="build") is not None
            ),
            "the hostile workflow",
            15,
        )
        stopped = exporter.value(gauge, project=HOSTILE, branch="main", workflow="build") or 0
        assert stopped <= time.time() + 3600 + 5
        assert_survived(exporter)


def test_thousands_of_test_result_strings_make_one_other_series(tmp_path: Path) -> None:
    with exporter_against("many_tests", tmp_path) as exporter:
        family = "circleci_job_last_tests"

        def hostile_series() -> dict[str, float]:
            return {
                dict(labels)["result"]: value
                for labels, value in exporter.samples(family).items()
                if dict(labels)["project"] == HOSTILE
            }

        wait_until(lambda: "other" in hostile_series(), "the hostile test results", 15)
        assert hostile_series() == {"success": 0, "failure": 0, "skipped": 0, "other": 5000}
        assert_survived(exporter)


def test_a_pipeline_that_vanishes_is_forgotten_and_newer_ones_are_read(tmp_path: Path) -> None:
    with exporter_against("vanish", tmp_path) as exporter:
        forgotten = "circleci_exporter_forgotten_total"
        wait_until(lambda: (exporter.value(forgotten, kind="pipeline") or 0) >= 1, "404", 15)
        info = "circleci_workflow_last_run_info"
        wait_until(
            lambda: any(
                dict(labels)["project"] == HOSTILE and dict(labels)["pipeline_number"] == "2"
                for labels in exporter.samples(info)
            ),
            "the pipeline after the vanished one to be read",
            15,
        )
        assert exporter.value("circleci_up", project=HOSTILE) == 1
        running = exporter.value(
            "circleci_workflow_runs_in_progress",
            project=HOSTILE, branch="main", workflow="build", status="running",
        )  # fmt: skip
        assert running == 0
        assert "no longer knows" in exporter.log.read_text()
        assert_survived(exporter)


def test_an_unknown_finished_status_settles_its_pipeline(tmp_path: Path) -> None:
    with exporter_against("unknown_status", tmp_path) as exporter:
        status = "circleci_workflow_last_completed_status"
        labels = {"project": HOSTILE, "branch": "main", "workflow": "build"}
        wait_until(lambda: exporter.value(status, **labels, status="exploded") == 1, "read", 15)
        cycles = "circleci_exporter_collect_duration_seconds_count"
        before = exporter.value(cycles, collector="live") or 0
        wait_until(
            lambda: (exporter.value(cycles, collector="live") or 0) >= before + 6,
            "three more cycles of each project",
            15,
        )
        # Read once when first seen; a pipeline that never settled was re-read every cycle.
        assert exporter.fake.requests["/v2/pipeline/hostile-p1/workflow"] == 1
        assert_survived(exporter)


def test_a_project_with_too_many_names_stops_at_its_series_limit(tmp_path: Path) -> None:
    with exporter_against(
        "many_workflows", tmp_path, collect={"max_series_per_project": 10}
    ) as exporter:
        hits = "circleci_exporter_series_limit_hits_total"
        wait_until(lambda: (exporter.value(hits, project=HOSTILE) or 0) > 0, "the limit", 15)
        names = {
            dict(labels)["workflow"]
            for labels in exporter.samples("circleci_workflow_last_completed_timestamp_seconds")
            if dict(labels)["project"] == HOSTILE
        }
        assert 0 < len(names) <= 10
        assert "series limit" in exporter.log.read_text()
        assert_survived(exporter)
