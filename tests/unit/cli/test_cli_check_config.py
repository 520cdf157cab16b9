"""`circleci-exporter --check-config`: the sources merged, printed with the token masked."""

import json
from collections.abc import Callable
from pathlib import Path

import yaml
from cli_support import TOKEN, Run

GOOD = """\
projects:
  - slug: github/acme/api
    branches: ["default", "release/*"]
orgs:
  - slug: gh/acme
collect:
  interval: 30s
  insights_interval: 15m
  insights_window: last-30-days
web:
  listen_address: ":10027"
"""


def test_good_config_prints_effective_yaml_with_token_masked(
    run: Run, config_file: Callable[[str], Path]
) -> None:
    result = run(
        "--config", str(config_file(GOOD)), "--check-config", env={"CIRCLECI_TOKEN": TOKEN}
    )

    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(result.stdout)
    assert data["projects"][0]["slug"] == "gh/acme/api"
    assert data["collect"]["insights_interval"] == "15m"
    assert data["api"]["token"] == "<secret>"
    assert TOKEN not in result.stdout + result.stderr
    assert result.stderr == ""


def test_token_file_is_accepted(
    run: Run, config_file: Callable[[str], Path], tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)

    result = run(
        "--config",
        str(config_file(GOOD)),
        "--check-config",
        env={"CIRCLECI_TOKEN_FILE": str(token_file)},
    )

    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout + result.stderr


def test_config_path_from_env(run: Run, config_file: Callable[[str], Path]) -> None:
    result = run(
        "--check-config",
        env={"CIRCLECI_TOKEN": TOKEN, "CIRCLECI_EXPORTER_CONFIG": str(config_file(GOOD))},
    )

    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["orgs"][0]["slug"] == "gh/acme"


def test_config_flag_beats_config_env(
    run: Run, config_file: Callable[[str], Path], tmp_path: Path
) -> None:
    result = run(
        "--config",
        str(config_file(GOOD)),
        "--check-config",
        env={"CIRCLECI_TOKEN": TOKEN, "CIRCLECI_EXPORTER_CONFIG": str(tmp_path / "absent.yaml")},
    )

    assert result.returncode == 0, result.stderr


def test_flags_beat_env_and_yaml(run: Run, config_file: Callable[[str], Path]) -> None:
    result = run(
        "--config",
        str(config_file(GOOD + "log:\n  level: debug\n")),
        "--check-config",
        "--web.listen-address",
        "127.0.0.1:9999",
        "--web.telemetry-path",
        "/probe",
        "--log.level",
        "ERROR",
        "--log.format",
        "json",
        env={"CIRCLECI_TOKEN": TOKEN, "CIRCLECI_EXPORTER_WEB__LISTEN_ADDRESS": "127.0.0.1:1111"},
    )

    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(result.stdout)
    assert (data["web"]["listen_address"], data["web"]["telemetry_path"]) == (
        "127.0.0.1:9999",
        "/probe",
    )
    assert data["log"] == {"level": "error", "format": "json"}


def test_env_beats_yaml(run: Run, config_file: Callable[[str], Path]) -> None:
    result = run(
        "--config",
        str(config_file(GOOD)),
        "--check-config",
        env={"CIRCLECI_TOKEN": TOKEN, "CIRCLECI_EXPORTER_COLLECT__INTERVAL": "45s"},
    )

    assert yaml.safe_load(result.stdout)["collect"]["interval"] == "45s"


def test_aggressive_interval_warns_in_logfmt_and_still_succeeds(
    run: Run, config_file: Callable[[str], Path]
) -> None:
    result = run(
        "--config",
        str(config_file(GOOD.replace("interval: 30s", "interval: 2s"))),
        "--check-config",
        env={"CIRCLECI_TOKEN": TOKEN},
    )

    assert result.returncode == 0
    [line] = result.stderr.splitlines()
    assert "level=warning" in line
    assert "key=collect.interval value=2s suggested_minimum=10s" in line


def test_aggressive_interval_warning_follows_log_format(
    run: Run, config_file: Callable[[str], Path]
) -> None:
    result = run(
        "--config",
        str(config_file(GOOD.replace("interval: 30s", "interval: 2s"))),
        "--check-config",
        "--log.format",
        "json",
        env={"CIRCLECI_TOKEN": TOKEN},
    )

    [line] = result.stderr.splitlines()
    record = json.loads(line)
    assert (record["level"], record["key"], record["value"]) == (
        "warning",
        "collect.interval",
        "2s",
    )


def test_demo_needs_neither_token_nor_projects(run: Run) -> None:
    result = run("--demo", "--check-config")

    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["api"]["token"] is None
