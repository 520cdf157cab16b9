"""promtool checks and unit tests of the rule files, and a real Prometheus evaluating them."""

from pathlib import Path
from typing import Any

import pytest

from .binaries import (
    PROMETHEUS_CONFIG,
    prometheus_config_for_test,
    promtool,
    run_tool,
    running_prometheus,
    wait_until,
)
from .rule_files import (
    ALERT_RULES,
    RECORDING_RULES,
    RULE_UNIT_TESTS,
    alert_rules,
    rules_of,
    unit_test_cases,
)


@pytest.mark.parametrize("rule_file", [RECORDING_RULES, ALERT_RULES], ids=lambda p: p.name)
def test_rule_file_passes_promtool_check(rule_file: Path) -> None:
    result = run_tool(promtool(), "check", "rules", str(rule_file))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules_of(rule_file))} rules found" in result.stdout


def test_prometheus_config_passes_promtool_check() -> None:
    result = run_tool(promtool(), "check", "config", str(PROMETHEUS_CONFIG))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rule files found" in result.stdout


def test_rule_unit_tests_pass() -> None:
    assert RULE_UNIT_TESTS, "no promtool unit tests in prometheus/tests/"

    result = run_tool(promtool(), "test", "rules", *map(str, RULE_UNIT_TESTS))

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_UNIT_TESTS)


def test_every_alert_has_unit_tests_firing_and_quiet() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in unit_test_cases():
        (firing if case.get("exp_alerts") else quiet).add(case["alertname"])

    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "alerts without a test where they fire"
    assert names - quiet == set(), "alerts without a test where they stay quiet"


def test_prometheus_loads_and_evaluates_every_rule(tmp_path: Path) -> None:
    # Unused ports: the rules must evaluate cleanly on no data at all (no many-to-many joins...).
    config = prometheus_config_for_test(
        tmp_path, exporter_targets=["127.0.0.1:9"], alertmanager_targets=["127.0.0.1:9"]
    )
    expected = {rule["alert"] for rule in alert_rules()}
    expected |= {rule["record"] for rule in rules_of(RECORDING_RULES)}

    with running_prometheus(config, tmp_path) as prometheus, prometheus.client() as client:
        rules: list[dict[str, Any]] = []

        def every_rule_evaluated() -> bool:
            groups = client.get("/api/v1/rules").json()["data"]["groups"]
            rules[:] = [rule for group in groups for rule in group["rules"]]
            return bool(rules) and all(rule["health"] != "unknown" for rule in rules)

        wait_until(every_rule_evaluated, "Prometheus to evaluate every rule once")

    assert {rule["name"] for rule in rules} == expected
    assert [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"] == []
