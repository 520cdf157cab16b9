"""Every alert carries what an on-call person needs: severity, texts, runbook, a `for`."""

import re
from typing import Any

import pytest

from .rule_files import (
    ALERT_RULES,
    RECORDING_RULES,
    RUNBOOK_URL,
    alert_rules,
    rules_of,
    runbook_anchors,
    unit_test_cases,
)

ALERTS = alert_rules()
ROUTED_SEVERITIES = {"critical", "warning", "info"}
# Labels that name what an alert is about; the description must spell each one out.
SUBJECT_LABELS = ("project", "branch", "workflow")
# The metrics whose `url` label links a CircleCI page.
LINK_METRICS = {"circleci_workflow_last_run_info", "circleci_project_info"}


def _by_name(alert: dict[str, Any]) -> str:
    return str(alert["alert"])


def test_the_issue_alerts_exist() -> None:
    assert {alert["alert"] for alert in ALERTS} >= {
        "CircleCIDefaultBranchFailing",
        "CircleCIDefaultBranchBrokenForLong",
        "CircleCIWorkflowSuccessRateLow",
        "CircleCIWorkflowDurationRegression",
        "CircleCIJobQueueTimeHigh",
        "CircleCIApprovalWaitingTooLong",
        "CircleCIPipelineConfigErrors",
        "CircleCIFlakyTestsIncreasing",
        "CircleCIExporterDown",
        "CircleCIExporterShardDown",
        "CircleCIExporterShardsInconsistent",
        "CircleCIExporterProjectDown",
        "CircleCIExporterRateLimited",
        "CircleCIExporterDataStale",
    }


@pytest.mark.parametrize("alert", ALERTS, ids=_by_name)
def test_alert_has_severity_texts_runbook_and_for(alert: dict[str, Any]) -> None:
    assert alert["labels"]["severity"] in ROUTED_SEVERITIES
    assert alert["annotations"]["summary"].strip()
    assert alert["annotations"]["description"].strip()
    assert alert["annotations"]["runbook_url"] == f"{RUNBOOK_URL}#{alert['alert'].lower()}"
    assert alert.get("for", "0s") not in ("0s", "0m", "0")


@pytest.mark.parametrize("alert", ALERTS, ids=_by_name)
def test_alert_has_a_runbook_section(alert: dict[str, Any]) -> None:
    assert alert["alert"].lower() in runbook_anchors()


@pytest.mark.parametrize("alert", ALERTS, ids=_by_name)
def test_description_names_the_alert_subject_and_links_circleci(alert: dict[str, Any]) -> None:
    # The labels an alert carries are taken from its unit tests' expectations.
    labels = {
        label
        for case in unit_test_cases()
        if case["alertname"] == alert["alert"]
        for expected in case.get("exp_alerts") or []
        for label in expected["exp_labels"]
    }
    description = alert["annotations"]["description"]

    for label in SUBJECT_LABELS:
        if label in labels:
            assert f"$labels.{label}" in description
    if "project" in labels and not alert["alert"].startswith("CircleCIExporter"):
        assert LINK_METRICS & set(re.findall(r"circleci_\w+_info", description))


@pytest.mark.parametrize(
    "rule",
    rules_of(ALERT_RULES) + rules_of(RECORDING_RULES),
    ids=lambda r: r.get("alert", r.get("record")),
)
def test_no_rule_assumes_a_job_name(rule: dict[str, Any]) -> None:
    # The job is `circleci` in the compose stack, `<namespace>/<service>` under
    # prometheus-operator, and anything a user chooses elsewhere.
    assert not re.search(r"\bjob\s*(=|!=|=~|!~)", rule["expr"]), rule["expr"]
