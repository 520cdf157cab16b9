"""The repository's rule files, unit tests and runbook, parsed for the convention tests."""

import re
from pathlib import Path
from typing import Any

import yaml

from .binaries import REPO_ROOT

RULES_DIR = REPO_ROOT / "prometheus" / "rules"
ALERT_RULES = RULES_DIR / "circleci-alerts.yml"
RECORDING_RULES = RULES_DIR / "circleci-recording.yml"
RULE_UNIT_TESTS = sorted((REPO_ROOT / "prometheus" / "tests").glob("*.yml"))
RUNBOOK = REPO_ROOT / "docs" / "runbook.md"
RUNBOOK_URL = "https://github.com/ocean-ci/ocean-ci/blob/main/docs/runbook.md"


def rules_of(path: Path) -> list[dict[str, Any]]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def alert_rules() -> list[dict[str, Any]]:
    return rules_of(ALERT_RULES)


def unit_test_cases() -> list[dict[str, Any]]:
    """Every `alert_rule_test` entry of every promtool unit-test file."""
    cases = []
    for path in RULE_UNIT_TESTS:
        document: dict[str, Any] = yaml.safe_load(path.read_text())
        for test in document["tests"]:
            cases.extend(test.get("alert_rule_test", []))
    return cases


def runbook_anchors() -> set[str]:
    """Anchors GitHub gives the runbook's headings: lower case, punctuation dropped, '-' for ' '."""
    anchors = set()
    for line in RUNBOOK.read_text().splitlines():
        heading = re.match(r"#{1,6}\s+(.*)", line)
        if heading:
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors
