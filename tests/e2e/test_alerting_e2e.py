"""The alerting path end to end on real processes: a default branch breaks in the simulator, the
exporter reports it, Prometheus evaluates the repository's rules, and Alertmanager pages through
the repository's routes with a link to the failing run; a repair resolves the page."""

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from exporter.simulator.steps import command_name
from tests.e2e.alerting_stack import (
    FEATURE_BRANCHES,
    AlertingStack,
    Page,
    PagedAlert,
    Scenario,
    Simulator,
    alerting_stack,
    plan_scenario,
)
from tests.rules.binaries import wait_until

pytestmark = pytest.mark.e2e

ALERT = "CircleCIDefaultBranchFailing"
PAGE_TIMEOUT = 120.0
FEATURE_FAILURE_TIMEOUT = 60.0
RESOLVE_TIMEOUT = 90.0
EXPORTER_DOWN_TIMEOUT = 60.0
# How prometheus-operator names the job of a ServiceMonitor's targets: <namespace>/<service>.
OPERATOR_JOB = "monitoring/circleci-exporter"
CIRCLECI_LINK = re.compile(r"https://app\.circleci\.com/\S+")


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return plan_scenario()


def break_default_branch(scenario: Scenario) -> Callable[[Simulator], None]:
    return lambda simulator: simulator.break_default_branch(scenario.project.slug)


def alerts_named(alerts: list[PagedAlert], slug: str) -> list[PagedAlert]:
    return [
        alert
        for alert in alerts
        if alert.labels.get("alertname") == ALERT and alert.labels.get("project") == slug
    ]


def expected_labels(scenario: Scenario) -> dict[str, str]:
    (workflow,) = scenario.project.workflows
    return {
        "alertname": ALERT,
        "project": scenario.project.slug,
        "branch": scenario.project.default_branch,
        "workflow": workflow.name,
        "severity": "critical",
    }


def wait_for_first_page(stack: AlertingStack, scenario: Scenario) -> Page:
    slug = scenario.project.slug
    return stack.wait_for_page(
        lambda page: page.event_action == "trigger" and bool(alerts_named(page.firing, slug)),
        f"a page for {ALERT} of {slug}",
        PAGE_TIMEOUT,
    )


def test_a_broken_default_branch_pages_with_its_circleci_link(
    tmp_path: Path, scenario: Scenario
) -> None:
    project = scenario.project
    with alerting_stack(tmp_path, scenario, break_default_branch(scenario)) as stack:
        page = wait_for_first_page(stack, scenario)

        assert page.path == "/pager"
        paged = alerts_named(page.firing, project.slug)
        assert [alert.labels for alert in paged] == [expected_labels(scenario)]
        alert = paged[0]
        assert alert.annotations["runbook_url"].endswith("#circlecidefaultbranchfailing")
        links = CIRCLECI_LINK.findall(alert.annotations["description"])
        default_runs = {
            run.url for run in stack.simulator.runs(project.slug, project.default_branch)
        }
        assert len(links) == 1, alert.annotations["description"]
        assert links[0] in default_runs, (links[0], sorted(default_runs))
        # The description names the failing job and its step (joined in the rule on the
        # exporter's circleci_job_last_failed_step_info).
        failing = {
            f'Failing job: {job.name}, step "{command_name(job)}".'
            for run in stack.simulator.runs(project.slug, project.default_branch)
            for job in run.jobs
            if job.final_status == "failed"
        }
        assert any(f in alert.annotations["description"] for f in failing), (
            alert.annotations["description"],
            sorted(failing),
        )

        # The alert joins on the default branch: a red feature branch, seen by Prometheus for a
        # few rule evaluations (3 scrapes 1s apart), must never become an alert, not even pending.
        feature_failures = (
            "sum by (branch) (sum_over_time(circleci_workflow_last_completed_status"
            f'{{project="{project.slug}", branch=~"feature/.*", status=~"failed|error"}}[10m]))'
            " >= 3"
        )
        wait_until(
            lambda: bool(stack.query(feature_failures)),
            f"Prometheus to see a failed run on {FEATURE_BRANCHES} of {project.slug} "
            f"(the simulator fails one on {scenario.feature_branch})",
            FEATURE_FAILURE_TIMEOUT,
        )
        # ALERTS holds every pending and firing alert Prometheus evaluated.
        alerts_ever = (
            f'count_over_time(ALERTS{{alertname="{ALERT}", project="{project.slug}"}}[10m])'
        )
        branches_alerted = {series["metric"]["branch"] for series in stack.query(alerts_ever)}
        assert branches_alerted == {project.default_branch}
        paged_branches = {
            alert.labels["branch"]
            for page in stack.pages()
            for alert in alerts_named(page.firing + page.resolved, project.slug)
        }
        assert paged_branches == {project.default_branch}
        assert not [n for n in stack.received if n.path != "/pager" and ALERT in str(n.body)]


def test_repairing_the_default_branch_resolves_the_page(tmp_path: Path, scenario: Scenario) -> None:
    project = scenario.project
    with alerting_stack(tmp_path, scenario, break_default_branch(scenario)) as stack:
        wait_for_first_page(stack, scenario)

        stack.simulator.repair_default_branch(project.slug)
        page = stack.wait_for_page(
            lambda page: bool(alerts_named(page.resolved, project.slug)),
            f"the page for {ALERT} of {project.slug} to resolve after the repair",
            RESOLVE_TIMEOUT,
        )

        assert page.path == "/pager"
        assert page.event_action == "resolve"
        assert page.firing == []
        resolved = alerts_named(page.resolved, project.slug)
        assert [alert.labels for alert in resolved] == [expected_labels(scenario)]


def test_under_any_job_name_the_page_arrives_and_a_dead_exporter_alerts(
    tmp_path: Path, scenario: Scenario
) -> None:
    project = scenario.project
    with alerting_stack(
        tmp_path, scenario, break_default_branch(scenario), job_name=OPERATOR_JOB
    ) as stack:
        page = wait_for_first_page(stack, scenario)
        paged = alerts_named(page.firing, project.slug)
        assert [alert.labels for alert in paged] == [expected_labels(scenario)]
        assert stack.query(f'up{{job="{OPERATOR_JOB}"}} == 1')

        stack.exporter.process.kill()
        notification = stack.wait_for_notification(
            lambda n: "CircleCIExporterDown" in json.dumps(n.body),
            "the CircleCIExporterDown notification after the exporter was killed",
            EXPORTER_DOWN_TIMEOUT,
        )

        assert notification.path == "/chat"  # a warning
        firing = [
            alert["labels"]
            for alert in stack.prometheus_alerts()
            if alert["labels"]["alertname"] == "CircleCIExporterDown" and alert["state"] == "firing"
        ]
        instance = stack.exporter.url.removeprefix("http://")
        assert firing == [
            {
                "alertname": "CircleCIExporterDown",
                "job": OPERATOR_JOB,
                "instance": instance,
                "severity": "warning",
            }
        ]
        assert instance in json.dumps(notification.body)
