"""Sources, later ones win: defaults < YAML file < environment < command-line flags."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from exporter.settings import Settings, load_settings


def test_defaults_apply_without_any_source() -> None:
    settings = load_settings(None)

    assert settings.collect.interval == 30.0
    assert settings.collect.insights_interval == 900.0
    assert settings.web.listen_address == ":10027"
    assert settings.web.telemetry_path == "/metrics"
    assert settings.api.url == "https://circleci.com/api"
    assert settings.log.format == "logfmt"


def test_yaml_beats_defaults(write_config: Callable[[str], Path]) -> None:
    settings = load_settings(write_config("collect:\n  interval: 1m\n"))

    assert settings.collect.interval == 60.0


def test_yaml_keeps_defaults_of_keys_it_does_not_set(write_config: Callable[[str], Path]) -> None:
    settings = load_settings(write_config("collect:\n  interval: 1m\n"))

    assert settings.collect.insights_interval == 900.0


def test_env_beats_yaml(
    write_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIRCLECI_EXPORTER_COLLECT__INTERVAL", "2m")

    settings = load_settings(write_config("collect:\n  interval: 1m\n  tests: false\n"))

    assert settings.collect.interval == 120.0
    assert settings.collect.tests is False  # the env var replaced one key, not the section


def test_flag_beats_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCLECI_EXPORTER_WEB__LISTEN_ADDRESS", "127.0.0.1:1111")
    monkeypatch.setenv("CIRCLECI_EXPORTER_WEB__TELEMETRY_PATH", "/from-env")

    settings = load_settings(None, {"web": {"listen_address": "127.0.0.1:2222"}})

    assert settings.web.listen_address == "127.0.0.1:2222"
    assert settings.web.telemetry_path == "/from-env"


def test_flag_beats_yaml(write_config: Callable[[str], Path]) -> None:
    path = write_config("log:\n  level: debug\n  format: json\n")

    settings = load_settings(path, {"log": {"level": "error"}})

    assert settings.log.level == "error"
    assert settings.log.format == "json"


def test_circleci_api_url_env_beats_yaml(
    write_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIRCLECI_API_URL", "http://127.0.0.1:8080/api/")

    settings = load_settings(write_config("api:\n  url: https://example.com/api\n"))

    assert settings.api.url == "http://127.0.0.1:8080/api"


def test_circleci_token_env_beats_yaml(
    write_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIRCLECI_TOKEN", "from-env")

    settings = load_settings(write_config("api:\n  token: from-yaml\n"))

    token = settings.api.resolved_token()
    assert token is not None
    assert token.get_secret_value() == "from-env"


def test_env_lists_are_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCLECI_EXPORTER_PROJECTS", '[{"slug": "gh/acme/api"}]')

    settings = load_settings(None)

    assert [p.slug for p in settings.projects] == ["gh/acme/api"]


def test_env_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("circleci_exporter_log__level", "warning")

    assert load_settings(None).log.level == "warning"


def test_each_load_reads_only_its_own_file(tmp_path: Path) -> None:
    """The YAML path travels with the load, not through shared state: loads running at the
    same time in several threads each see their own file."""
    files = []
    for n in range(8):
        path = tmp_path / f"c{n}.yaml"
        path.write_text(f"collect:\n  interval: {n + 1}m\n")
        files.append(path)
    with ThreadPoolExecutor(max_workers=8) as pool:
        loaded = list(pool.map(load_settings, files * 4))
    assert [s.collect.interval for s in loaded] == [60.0 * (n + 1) for n in range(8)] * 4
    assert all(type(s) is Settings for s in loaded)
    assert load_settings(None).collect.interval == 30.0
