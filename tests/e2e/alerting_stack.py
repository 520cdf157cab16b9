"""The whole alerting path on real processes, for the end-to-end alerting tests.

The simulator serves a fake CircleCI from this process (an event-loop thread of its own, the wall
clock), `circleci-exporter` runs against it as a subprocess, the real Prometheus scrapes the
exporter every second and evaluates the repository's rule files, and the real Alertmanager routes
with the repository's alertmanager.yml to a local recording receiver.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import httpx
import yaml
from anyio.from_thread import BlockingPortal, start_blocking_portal

from exporter.simulator import RunningSimulator, SimClock, SimConfig, World
from exporter.simulator.model import Project, Workflow
from tests.conftest import EXPORTER
from tests.rules.binaries import (
    Server,
    alertmanager_config_for_test,
    free_port,
    prometheus_config_for_test,
    running_alertmanager,
    running_process,
    running_prometheus,
)
from tests.rules.receiver import Notification, NotificationRecorder, recording_receiver
from tests.rules.rule_files import ALERT_RULES, RECORDING_RULES

# A 10-minute workflow takes half a second and a project's pushes come seconds apart, so runs
# complete while the test watches; the world still never runs ahead of the wall clock.
SPEED = 1200.0
FEATURE_BRANCHES = "feature/*"
FAILED = ("failed", "error")
# Shortened `for:` of every alert in the test's copy of the rules. The `for:` timing itself is
# covered by the promtool unit tests in prometheus/tests/; here it would only make the test wait.
SHORT_FOR = "2s"

_PLAN_HORIZON = 45.0  # seconds of world (from its start) a scenario is planned in
_FEATURE_FAILURE_WINDOW = (5.0, 30.0)  # a feature-branch run fails in it, after the stack is up
_FEATURE_FAILURE_HOLD = 10.0  # ... and stays the branch's last completed run this long
_DEFAULT_RUN_WINDOW = (1.0, 15.0)  # a default-branch run starts in it, after the break


def sim_config(seed: int) -> SimConfig:
    # No history: every run the exporter sees is created after the scenario's break.
    return SimConfig(projects=20, seed=seed, speed=SPEED, history=0)


@dataclass(frozen=True)
class Scenario:
    """A simulated world (`seed`) whose `project` fails a run on `feature_branch` early on, and
    holds it long enough for Prometheus to see it, and runs its default branch soon after start."""

    seed: int
    project: Project
    feature_branch: str


def plan_scenario() -> Scenario:
    """The first seed whose world has a project fit for the alerting tests.

    The world is a pure function of its seed and start, so planning it on a manual clock tells
    what the wall-clock world of the test will do. Only projects with one workflow and no
    schedule qualify: a second workflow, or a nightly run that comes back only a simulated day
    later, could keep the project's page open after the repair.
    """
    for seed in range(1, 100):
        clock = SimClock.manual(datetime(2026, 6, 1, tzinfo=UTC))
        world = World(sim_config(seed), clock)
        candidates = [p for p in world.projects if len(p.workflows) == 1 and not p.schedules]
        for project in candidates:
            world.break_default_branch(project.slug)
        clock.advance(_PLAN_HORIZON)
        for project in candidates:
            feature_branch = _held_feature_failure(world, project)
            if feature_branch is not None and _early_default_run(world, project):
                return Scenario(seed, project, feature_branch)
    raise AssertionError(
        "no simulator seed in 1..99 has a project with an early default-branch run and a "
        f"held {FEATURE_BRANCHES} failure; widen the planning windows of {__name__}"
    )


def _offset(world: World, when: datetime) -> float:
    return (when - world.origin).total_seconds()


def _early_default_run(world: World, project: Project) -> bool:
    low, high = _DEFAULT_RUN_WINDOW
    return any(
        low <= _offset(world, pipeline.created_at) <= high and pipeline.workflows
        for pipeline in world.pipelines(project.slug, project.default_branch)
    )


def _held_feature_failure(world: World, project: Project) -> str | None:
    """A feature branch with a failed run in the failure window that no other run of the branch
    starts or ends near, so it stays the branch's last completed run for the hold time."""
    low, high = _FEATURE_FAILURE_WINDOW
    for pipeline in world.pipelines(project.slug):
        if not fnmatchcase(pipeline.branch, FEATURE_BRANCHES):
            continue
        branch_runs = [
            w for p in world.pipelines(project.slug, pipeline.branch) for w in p.workflows
        ]
        for run in pipeline.workflows:
            if run.final_status not in FAILED or not low <= _offset(world, run.stopped_at) <= high:
                continue
            held_until = run.stopped_at + timedelta(seconds=_FEATURE_FAILURE_HOLD)
            if not any(
                run.created_at <= moment <= held_until
                for other in branch_runs
                if other is not run
                for moment in (other.created_at, other.stopped_at)
            ):
                return pipeline.branch
    return None


def alert_rules_with_short_for(out_dir: Path) -> Path:
    """The repository's alert rules with every `for:` set to SHORT_FOR and nothing else changed."""
    original: dict[str, Any] = yaml.safe_load(ALERT_RULES.read_text())
    shortened: dict[str, Any] = yaml.safe_load(ALERT_RULES.read_text())
    for group in shortened["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = SHORT_FOR
    path = out_dir / ALERT_RULES.name
    path.write_text(yaml.safe_dump(shortened, sort_keys=False))
    # Prove the copy differs only in `for`: expr, labels and annotations are the repository's.
    written: dict[str, Any] = yaml.safe_load(path.read_text())
    for old_group, new_group in zip(original["groups"], written["groups"], strict=True):
        for old_rule, new_rule in zip(old_group["rules"], new_group["rules"], strict=True):
            assert {k: v for k, v in old_rule.items() if k != "for"} == {
                k: v for k, v in new_rule.items() if k != "for"
            }, f"the test copy of {old_rule.get('alert')} differs beyond `for`"
    return path


@dataclass(frozen=True)
class Simulator:
    """The running simulator; the world is only touched from its event-loop thread."""

    portal: BlockingPortal
    running: RunningSimulator

    def break_default_branch(self, slug: str) -> None:
        self.portal.call(self.running.world.break_default_branch, slug)

    def repair_default_branch(self, slug: str) -> None:
        self.portal.call(self.running.world.repair_default_branch, slug)

    def runs(self, slug: str, branch: str) -> list[Workflow]:
        """The world's runs on `branch` so far, oldest first."""
        return self.portal.call(self.running.world.workflows, slug, branch)


@contextmanager
def running_simulator(config: SimConfig) -> Iterator[Simulator]:
    failure: Exception | None = None
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(RunningSimulator(config)) as running,
    ):
        try:
            yield Simulator(portal, running)
        except Exception as error:
            # Raised past the simulator, not through it: its task group would wrap the test's
            # failure in an ExceptionGroup and bury the assertion message.
            failure = error
    if failure is not None:
        raise failure


@contextmanager
def running_exporter(sim: RunningSimulator, project: Project, work_dir: Path) -> Iterator[Server]:
    """`circleci-exporter` tracking the default and feature branches of `project`, once its
    first collection is done."""
    config = {
        "projects": [{"slug": project.slug, "branches": ["default", FEATURE_BRANCHES]}],
        "collect": {"interval": "1s", "insights_interval": "1h"},
    }
    with running_exporter_with(sim, config, work_dir) as exporter:
        yield exporter


@contextmanager
def running_exporter_with(
    sim: RunningSimulator, config: dict[str, Any], work_dir: Path
) -> Iterator[Server]:
    """`circleci-exporter` with this configuration against `sim`, once its first collection is
    done."""
    config_file = work_dir / "exporter.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    command = [
        str(EXPORTER),
        "--config", str(config_file),
        "--web.listen-address", f"127.0.0.1:{port}",
        "--log.level", "warning",
    ]  # fmt: skip
    env = {**os.environ, "CIRCLECI_TOKEN": sim.token, "CIRCLECI_API_URL": sim.api_url}
    with running_process(
        "exporter", command, port, work_dir, ready_path="/readyz", env=env
    ) as exporter:
        yield exporter


@dataclass(frozen=True)
class PagedAlert:
    """One alert as the PagerDuty integration describes it in `custom_details`."""

    labels: dict[str, str]
    annotations: dict[str, str]


@dataclass(frozen=True)
class Page:
    """A notification Alertmanager sent to the PagerDuty receiver (`event_action` trigger or
    resolve), with the alerts it lists as firing and as resolved."""

    path: str
    event_action: str
    firing: list[PagedAlert]
    resolved: list[PagedAlert]

    @classmethod
    def of(cls, notification: Notification) -> Page | None:
        body = notification.body
        if "event_action" not in body:
            return None
        details = body["payload"]["custom_details"]
        return cls(
            notification.path,
            body["event_action"],
            _paged_alerts(details.get("firing", "")),
            _paged_alerts(details.get("resolved", "")),
        )


_ALERT_BLOCK = re.compile(
    r"Labels:\n(?P<labels>.*?)Annotations:\n(?P<annotations>.*?)Source: ", re.DOTALL
)


def _paged_alerts(text: str) -> list[PagedAlert]:
    """Alertmanager's `pagerduty.default.instances` text: per alert, `Labels:` and
    `Annotations:` lists of ` - name = value` lines, then `Source: <url>`."""
    return [
        PagedAlert(_pairs(block["labels"]), _pairs(block["annotations"]))
        for block in _ALERT_BLOCK.finditer(text)
    ]


def _pairs(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if line.startswith(" - ") and " = " in line:
            name, _, value = line[3:].partition(" = ")
            pairs[name] = value
        elif name:  # a value that spans lines
            pairs[name] += "\n" + line
    return pairs


@dataclass
class AlertingStack:
    simulator: Simulator
    exporter: Server
    prometheus: Server
    alertmanager: Server
    receiver: NotificationRecorder
    received: list[Notification] = field(default_factory=list)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Prometheus' instant-query result (`data.result`)."""
        response = httpx.get(
            f"{self.prometheus.url}/api/v1/query", params={"query": promql}, timeout=10.0
        )
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def prometheus_alerts(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.prometheus.url}/api/v1/alerts", timeout=10.0)
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()["data"]["alerts"]
        return alerts

    def wait_for_page(self, matches: Callable[[Page], bool], what: str, timeout: float) -> Page:
        """The first page received that `matches`; every notification is kept in `received`."""
        notification = self.wait_for_notification(
            lambda n: (page := Page.of(n)) is not None and matches(page), what, timeout
        )
        page = Page.of(notification)
        assert page is not None
        return page

    def wait_for_notification(
        self, matches: Callable[[Notification], bool], what: str, timeout: float
    ) -> Notification:
        """The first notification received that `matches`; each one is kept in `received`."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                notification = self.receiver.next(timeout=left)
            except AssertionError:
                break
            self.received.append(notification)
            if matches(notification):
                return notification
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")

    def pages(self) -> list[Page]:
        """Every page received so far, including those still queued at the receiver."""
        self.received.extend(self.receiver.pending())
        return [page for n in self.received if (page := Page.of(n)) is not None]

    def diagnostics(self) -> str:
        sections = [
            f"exporter log ({self.exporter.log}):\n{_tail(self.exporter.log)}",
            f"prometheus log:\n{_tail(self.prometheus.log)}",
            f"alertmanager log:\n{_tail(self.alertmanager.log)}",
            f"notifications received: {[(n.path, n.body) for n in self.received]}",
        ]
        try:
            sections.append(f"prometheus alerts: {self.prometheus_alerts()}")
            sections.append(
                "prometheus last completed statuses == 1: "
                f"{self.query('circleci_workflow_last_completed_status == 1')}"
            )
            sections.append(f"prometheus targets up: {self.query('up')}")
        except httpx.HTTPError as error:
            sections.append(f"prometheus API unavailable: {error}")
        return "\n\n".join(sections)


@contextmanager
def alerting_stack(
    work_dir: Path,
    scenario: Scenario,
    at_start: Callable[[Simulator], None],
    *,
    job_name: str | None = None,
) -> Iterator[AlertingStack]:
    """Everything running for `scenario`; `at_start` changes the world right after it starts.
    `job_name` renames the scrape job of the repository's prometheus.yml.

    A failure inside the `with` block is re-raised with the exporter's output, the tails of the
    Prometheus and Alertmanager logs, and what Prometheus and the receiver saw.
    """
    with ExitStack() as processes:
        receiver = processes.enter_context(recording_receiver())
        alertmanager = processes.enter_context(
            running_alertmanager(
                # Resolved notifications wait for the group interval (5m in the repository).
                alertmanager_config_for_test(work_dir, receiver.url, group_interval="1s"),
                work_dir,
            )
        )
        simulator = processes.enter_context(running_simulator(sim_config(scenario.seed)))
        at_start(simulator)
        # Before Prometheus, so CircleCIExporterDown never fires and inhibits the page.
        exporter = processes.enter_context(
            running_exporter(simulator.running, scenario.project, work_dir)
        )
        prometheus_config = prometheus_config_for_test(
            work_dir,
            exporter_targets=[exporter.url.removeprefix("http://")],
            alertmanager_targets=[alertmanager.url.removeprefix("http://")],
            rule_files=[RECORDING_RULES, alert_rules_with_short_for(work_dir)],
            job_name=job_name,
        )
        prometheus = processes.enter_context(running_prometheus(prometheus_config, work_dir))
        stack = AlertingStack(simulator, exporter, prometheus, alertmanager, receiver)
        try:
            yield stack
        except Exception as error:
            raise AssertionError(f"{error or repr(error)}\n\n{stack.diagnostics()}") from error


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
