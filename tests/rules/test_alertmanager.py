"""The Alertmanager configuration: amtool checks, and a real Alertmanager routing and inhibiting."""

import contextlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from .binaries import (
    ALERTMANAGER_CONFIG,
    alertmanager_config_for_test,
    amtool,
    run_tool,
    running_alertmanager,
    wait_until,
)
from .receiver import recording_receiver


def _alert(alertname: str, severity: str, **labels: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": alertname, "severity": severity, **labels},
        "annotations": {
            "summary": f"{alertname} summary",
            "description": f"{alertname} on {labels.get('project', 'the exporter')}",
            "runbook_url": f"https://example.invalid/runbook#{alertname.lower()}",
        },
    }


API_BRANCH = {"project": "gh/acme/api", "branch": "main", "workflow": "build"}


def test_config_passes_amtool_check() -> None:
    result = run_tool(amtool(), "check-config", str(ALERTMANAGER_CONFIG))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("severity", "receiver"),
    [("critical", "pager"), ("warning", "chat"), ("info", "default"), ("none", "default")],
)
def test_routes_by_severity(severity: str, receiver: str) -> None:
    result = run_tool(
        amtool(),
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        f"severity={severity}",
        "project=gh/acme/api",
        "alertname=CircleCIDefaultBranchFailing",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_alertmanager_delivers_each_severity_to_its_receiver(tmp_path: Path) -> None:
    with recording_receiver() as receiver:
        config = alertmanager_config_for_test(tmp_path, receiver.url)
        with running_alertmanager(config, tmp_path) as alertmanager:
            response = httpx.post(
                f"{alertmanager.url}/api/v2/alerts",
                json=[
                    _alert("CircleCIDefaultBranchFailing", "critical", **API_BRANCH),
                    _alert("CircleCIPipelineConfigErrors", "warning", project="gh/acme/web"),
                    _alert("CircleCIApprovalWaitingTooLong", "info", **API_BRANCH),
                ],
            )
            assert response.status_code == 200
            received = {
                notification.path: notification.body
                for notification in (
                    receiver.next(),
                    receiver.next(),
                )
            }

    assert set(received) == {"/pager", "/chat"}
    pager = received["/pager"]
    assert pager["routing_key"] == "test-routing-key-pager"
    assert pager["event_action"] == "trigger"
    assert "CircleCIDefaultBranchFailing" in pager["payload"]["summary"]
    assert pager["links"] == [
        {"href": "https://example.invalid/runbook#circlecidefaultbranchfailing", "text": "Runbook"}
    ]
    (chat,) = received["/chat"]["attachments"]
    assert chat["title"] == "[FIRING] CircleCIPipelineConfigErrors gh/acme/web"
    assert "CircleCIPipelineConfigErrors on gh/acme/web" in chat["text"]
    # The info alert went to `default`, which has no integration: nothing else arrived.
    assert receiver.pending() == []


def test_a_page_holds_back_warnings_for_the_same_workflow(tmp_path: Path) -> None:
    expected = {
        ("CircleCIDefaultBranchFailing", "build"): "active",
        ("CircleCIWorkflowSuccessRateLow", "build"): "suppressed",
        ("CircleCIWorkflowSuccessRateLow", "lint"): "active",
        ("CircleCIPipelineConfigErrors", ""): "active",
    }

    states = _states_after_posting(
        tmp_path,
        [
            _alert("CircleCIDefaultBranchFailing", "critical", **API_BRANCH),
            _alert("CircleCIWorkflowSuccessRateLow", "warning", **API_BRANCH),
            _alert(
                "CircleCIWorkflowSuccessRateLow", "warning", **{**API_BRANCH, "workflow": "lint"}
            ),
            _alert("CircleCIPipelineConfigErrors", "warning", project="gh/acme/api", branch="main"),
        ],
        expected,
    )

    assert states == expected


def test_exporter_down_holds_back_the_data_alerts(tmp_path: Path) -> None:
    expected = {
        ("CircleCIExporterDown", ""): "active",
        ("CircleCIDefaultBranchFailing", "build"): "suppressed",
        ("CircleCIJobQueueTimeHigh", "build"): "suppressed",
        ("CircleCIExporterRateLimited", ""): "active",
    }

    states = _states_after_posting(
        tmp_path,
        [
            _alert("CircleCIExporterDown", "warning", job="circleci", instance="exporter:10027"),
            _alert("CircleCIDefaultBranchFailing", "critical", **API_BRANCH),
            _alert("CircleCIJobQueueTimeHigh", "warning", **API_BRANCH),
            _alert("CircleCIExporterRateLimited", "warning", instance="exporter:10027"),
        ],
        expected,
    )

    assert states == expected


def _states_after_posting(
    tmp_path: Path, alerts: list[dict[str, Any]], expected: dict[tuple[str, str], str]
) -> dict[tuple[str, str], str]:
    """Alertmanager's state (active, suppressed) of each posted alert, by (alertname, workflow),
    once it equals `expected` or after 15 seconds."""
    states: dict[tuple[str, str], str] = {}
    with recording_receiver() as receiver:
        config = alertmanager_config_for_test(tmp_path, receiver.url)
        with running_alertmanager(config, tmp_path) as alertmanager:
            httpx.post(f"{alertmanager.url}/api/v2/alerts", json=alerts).raise_for_status()

            def settled() -> bool:
                states.clear()
                for alert in httpx.get(f"{alertmanager.url}/api/v2/alerts").json():
                    key = (alert["labels"]["alertname"], alert["labels"].get("workflow", ""))
                    states[key] = alert["status"]["state"]
                return states == expected

            # The inhibitor learns about source alerts asynchronously; wait for it to settle,
            # and on a timeout fall through to the caller's assertion, which shows the states.
            with contextlib.suppress(AssertionError):
                wait_until(settled, "Alertmanager to settle on the expected states", timeout=15)
    return states
