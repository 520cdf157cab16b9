"""A schedule that stops firing, end to end on real processes: the simulator (high speed, wall
clock) serves schedules and creates their pipelines; `circleci-exporter` attributes them and
counts the missed slot; the real Prometheus, scraping with the README's relabelling that marks
the schedule critical, evaluates the repository's rules and fires `CircleCIScheduleMissed` as a
critical alert. The healthy schedules produce nothing."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from exporter.simulator import SimConfig
from exporter.simulator.model import Project
from tests.e2e.alerting_stack import (
    alert_rules_with_short_for,
    running_exporter_with,
    running_simulator,
)
from tests.rules.binaries import (
    Server,
    prometheus_config_for_test,
    running_prometheus,
    wait_until,
)
from tests.rules.rule_files import RECORDING_RULES

pytestmark = pytest.mark.e2e

SPEED = 60.0
# The smoke schedule (every minute at this speed) stops 75 s into the test: at least one of its
# runs comes first, and its next slot then passes with none.
STOP_AFTER = 75.0
MISSED_TIMEOUT = 300.0
# Two simulated hours (two minutes) of history: the slot the simulation starts in has its run,
# as it would in CircleCI, so the exporter's first slot is not missed by construction.
HISTORY = timedelta(hours=2)
ALERT = "CircleCIScheduleMissed"


def query(prometheus: Server, promql: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": promql}, timeout=10)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def alerts(prometheus: Server) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus.url}/api/v1/alerts", timeout=10)
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["data"]["alerts"]
    return found


def exporter_config(projects: list[Project]) -> dict[str, Any]:
    return {
        "projects": [{"slug": p.slug, "branches": ["default"]} for p in projects],
        "collect": {"interval": "1s", "schedules_interval": "10s", "schedule_grace": "5s"},
        "insights": {"enabled": False},
    }


def mark_critical(prometheus_config: Path, project: str, schedule: str) -> None:
    """The README's relabelling: the schedule's series get critical_schedule="true"."""
    config = yaml.safe_load(prometheus_config.read_text())
    for scrape in config["scrape_configs"]:
        scrape["metric_relabel_configs"] = [
            {
                "source_labels": ["__name__", "project", "schedule"],
                "regex": f"circleci_schedule_.+;{project};{schedule}",
                "target_label": "critical_schedule",
                "replacement": "true",
            }
        ]
    prometheus_config.write_text(yaml.safe_dump(config, sort_keys=False))


def test_a_schedule_that_stops_firing_pages_and_healthy_ones_do_not(tmp_path: Path) -> None:
    config = SimConfig(
        projects=2, seed=1, speed=SPEED, history=HISTORY, schedule_stop_after=STOP_AFTER * SPEED
    )
    with ExitStack() as stack:
        simulator = stack.enter_context(running_simulator(config))
        projects = simulator.running.world.projects
        smoke_project = projects[0]
        assert [s.name for s in smoke_project.schedules if s.stops] == ["smoke"]
        exporter = stack.enter_context(
            running_exporter_with(simulator.running, exporter_config(projects), tmp_path)
        )
        prometheus_config = prometheus_config_for_test(
            tmp_path,
            exporter_targets=[exporter.url.removeprefix("http://")],
            alertmanager_targets=[],
            rule_files=[RECORDING_RULES, alert_rules_with_short_for(tmp_path)],
        )
        mark_critical(prometheus_config, smoke_project.slug, "smoke")
        prometheus = stack.enter_context(running_prometheus(prometheus_config, tmp_path))

        def missed_alerts() -> list[dict[str, Any]]:
            return [a for a in alerts(prometheus) if a["labels"]["alertname"] == ALERT]

        def smoke_alert_firing() -> bool:
            return any(
                a["state"] == "firing" and a["labels"]["schedule"] == "smoke"
                for a in missed_alerts()
            )

        # While the smoke schedule still fires, its runs fill their slots: nothing is missed.
        wait_until(
            lambda: bool(
                query(prometheus, 'circleci_schedule_last_run_timestamp_seconds{schedule="smoke"}')
            ),
            "a smoke run attributed to its schedule",
            timeout=STOP_AFTER + 30,
        )
        assert missed_alerts() == []
        try:
            wait_until(smoke_alert_firing, f"{ALERT} for the smoke schedule", MISSED_TIMEOUT)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{exporter.log.read_text()[-3000:]}") from error

        (alert,) = missed_alerts()
        assert alert["labels"] == {
            "alertname": ALERT,
            "project": smoke_project.slug,
            "schedule": "smoke",
            "severity": "critical",
        }
        assert "/settings/project/" in alert["annotations"]["description"]
        missed = {
            (r["metric"]["project"], r["metric"]["schedule"]): float(r["value"][1])
            for r in query(prometheus, "circleci_schedule_missed_runs_total")
        }
        assert missed[smoke_project.slug, "smoke"] >= 1
        healthy = {key: value for key, value in missed.items() if key[1] != "smoke"}
        assert healthy and set(healthy.values()) == {0.0}
