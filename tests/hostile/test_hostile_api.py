"""End to end: the exporter process against a hostile CircleCI (issue 12).

Most misbehaviours are served side by side, one project each, to one exporter process (the
`exporter` fixture): each test checks its own item there, and every test asserts the suite's
five promises (`assert_survived`). A 429 and an outage hold back every project by design, so
those two get an exporter of their own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile.fake_circleci import slug_of
from tests.hostile.harness import Exporter, assert_survived, exporter_against
from tests.rules.binaries import wait_until

SIDE_BY_SIDE = (
    "surrogates", "trickle", "huge", "endless_pages", "vanish", "unknown_status", "future",
    "many_tests", "many_workflows", "echo_token",
)  # fmt: skip
SERIES_LIMIT = 10


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    with exporter_against(
        SIDE_BY_SIDE,
        tmp_path_factory.mktemp("hostile"),
        collect={"max_series_per_project": SERIES_LIMIT},
    ) as running:
        yield running


def _requests(exporter: Exporter, endpoint: str, code: str) -> float:
    return exporter.value("circleci_exporter_api_requests_total", endpoint=endpoint, code=code) or 0


def _up(exporter: Exporter, name: str) -> float | None:
    return exporter.value("circleci_up", project=slug_of(name))


def test_a_trickling_body_times_out(exporter: Exporter) -> None:
    wait_until(
        lambda: _requests(exporter, "listPipelinesForProject", "timeout") >= 1,
        "the trickling pipeline list to hit the request deadline",
        timeout=15,
    )
    wait_until(lambda: _up(exporter, "trickle") == 0, "the trickling project down", 15)
    assert_survived(exporter)


def test_an_endless_body_is_cut_at_the_size_cap(exporter: Exporter) -> None:
    wait_until(
        lambda: _requests(exporter, "listPipelinesForProject", "too_large") >= 2,
        "endless pipeline lists to be cut at api.max_response_bytes",
        timeout=15,
    )
    assert "api.max_response_bytes" in exporter.log.read_text()
    assert_survived(exporter)


def test_endless_page_tokens_stop_at_the_page_cap(exporter: Exporter) -> None:
    hits = "circleci_exporter_api_page_limit_hits_total"
    wait_until(
        lambda: (exporter.value(hits, endpoint="listPipelinesForProject") or 0) >= 2,
        "the page cap to be hit",
        timeout=15,
    )
    cycles = exporter.value(hits, endpoint="listPipelinesForProject") or 0
    pages = exporter.fake.requests[f"/v2/project/{slug_of('endless_pages')}/pipeline"]
    assert pages <= 5 * (cycles + 1)  # collect.max_pipeline_pages is 5 in these tests
    assert "page limit" in exporter.log.read_text()
    assert_survived(exporter)


def test_a_token_echoed_in_errors_appears_nowhere(exporter: Exporter) -> None:
    wait_until(lambda: _up(exporter, "echo_token") == 0, "the echoing project down", 15)
    assert "***" in exporter.get("/").text
    assert_survived(exporter)  # which looks for the token in every page and the log


def test_lone_surrogates_in_every_name_are_replaced_not_fatal(exporter: Exporter) -> None:
    wait_until(lambda: _up(exporter, "surrogates") == 1, "the surrogates project up", 15)
    wait_until(lambda: "build\ufffd" in exporter.get("/metrics").text, "the cleaned name", 15)
    assert exporter.value("circleci_exporter_render_errors_total") == 0
    assert_survived(exporter)


def test_far_future_timestamps_are_clamped(exporter: Exporter) -> None:
    gauge = "circleci_workflow_last_completed_timestamp_seconds"
    labels = {"project": slug_of("future"), "branch": "main", "workflow": "build"}
    wait_until(lambda: exporter.value(gauge, **labels) is not None, "the future workflow", 15)
    assert (exporter.value(gauge, **labels) or 0) <= time.time() + 3600 + 5
    assert_survived(exporter)


def test_thousands_of_test_result_strings_make_one_other_series(exporter: Exporter) -> None:
    def series() -> dict[str, float]:
        return {
            dict(labels)["result"]: value
            for labels, value in exporter.samples("circleci_job_last_tests").items()
            if dict(labels)["project"] == slug_of("many_tests")
        }

    wait_until(lambda: "other" in series(), "the many test results", 15)
    assert series() == {"success": 0, "failure": 0, "skipped": 0, "other": 5000}
    assert_survived(exporter)


def test_a_pipeline_that_vanishes_is_forgotten_and_newer_ones_are_read(
    exporter: Exporter,
) -> None:
    slug = slug_of("vanish")
    forgotten = "circleci_exporter_forgotten_total"
    wait_until(lambda: (exporter.value(forgotten, kind="pipeline") or 0) >= 1, "the 404", 15)
    wait_until(
        lambda: any(
            dict(labels)["project"] == slug and dict(labels)["pipeline_number"] == "2"
            for labels in exporter.samples("circleci_workflow_last_run_info")
        ),
        "the pipeline after the vanished one to be read",
        15,
    )
    assert _up(exporter, "vanish") == 1
    running = exporter.value(
        "circleci_workflow_runs_in_progress",
        project=slug, branch="main", workflow="build", status="running",
    )  # fmt: skip
    assert running == 0
    assert "no longer knows" in exporter.log.read_text()
    assert_survived(exporter)


def test_an_unknown_finished_status_settles_its_pipeline(exporter: Exporter) -> None:
    slug = slug_of("unknown_status")
    status = "circleci_workflow_last_completed_status"
    labels = {"project": slug, "branch": "main", "workflow": "build", "status": "exploded"}
    wait_until(lambda: exporter.value(status, **labels) == 1, "the exploded workflow", 15)
    for _ in range(2):  # two more cycles of that project
        last = exporter.last_success(slug) or 0
        wait_until(lambda: (exporter.last_success(slug) or 0) > last, "another cycle", 15)  # noqa: B023
    # Read once when first seen; a pipeline that never settled was re-read every cycle.
    assert exporter.fake.requests["/v2/pipeline/unknown_status-p1/workflow"] == 1
    assert_survived(exporter)


def test_a_project_with_too_many_names_stops_at_its_series_limit(exporter: Exporter) -> None:
    slug = slug_of("many_workflows")
    hits = "circleci_exporter_series_limit_hits_total"
    wait_until(lambda: (exporter.value(hits, project=slug) or 0) > 0, "the series limit", 15)
    names = {
        dict(labels)["workflow"]
        for labels in exporter.samples("circleci_workflow_last_completed_timestamp_seconds")
        if dict(labels)["project"] == slug
    }
    assert 0 < len(names) <= SERIES_LIMIT
    assert "series limit" in exporter.log.read_text()
    assert_survived(exporter)


def test_a_huge_retry_after_pauses_everything_for_the_capped_wait_only(tmp_path: Path) -> None:
    with exporter_against(("rate_limited",), tmp_path) as alone:
        gauge = "circleci_exporter_rate_limited_until_timestamp_seconds"
        wait_until(lambda: (alone.value(gauge, reason="429") or 0) > 0, "the 429 pause", 15)
        until = alone.value(gauge, reason="429") or 0
        # max_rate_limit_wait is 2s in these tests: the 999999 s asked for is capped.
        assert until <= time.time() + 2.5
        assert alone.value(gauge, reason="circuit_breaker") == 0
        assert_survived(alone)


def test_an_outage_opens_the_circuit_breaker_and_collection_resumes_after(
    tmp_path: Path,
) -> None:
    with exporter_against(
        ("outage",),
        tmp_path,
        api={"circuit_breaker_failures": 3, "circuit_breaker_max_pause": "4s", "max_retries": 3},
    ) as alone:
        wait_until(lambda: _up(alone, "outage") == 1, "a first read", 15)
        alone.fake.down = True
        gauge = "circleci_exporter_rate_limited_until_timestamp_seconds"
        wait_until(
            lambda: (alone.value(gauge, reason="circuit_breaker") or 0) > 0,
            "the breaker to open",
            15,
        )
        # Paused, the two projects stop hammering: with 1s cycles and 3 retries each, an
        # exporter without the breaker sent ~2 attempts a second (12 in these 6 s); paused up
        # to 4 s at a time it sends about one per project per pause.
        dropped = alone.fake.dropped
        time.sleep(6)
        assert alone.fake.dropped - dropped <= 6
        assert "CircleCI unreachable" in alone.log.read_text()
        alone.fake.down = False
        wait_until(lambda: _up(alone, "outage") == 1, "recovery", 15)
        assert_survived(alone)
