"""The CircleCI token: CIRCLECI_TOKEN or CIRCLECI_TOKEN_FILE, and never shown."""

import logging
from pathlib import Path

import pytest

from exporter.settings import ConfigError, load_settings, warn_about_abusive_intervals

TOKEN = "CCIPAT_s3cr3tT0kenValue_0123456789abcdef"


def test_token_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCLECI_TOKEN", TOKEN)

    token = load_settings(None).api.resolved_token()

    assert token is not None
    assert token.get_secret_value() == TOKEN


def test_no_token_anywhere_resolves_to_none() -> None:
    assert load_settings(None).api.resolved_token() is None


def test_token_file_is_read_and_stripped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    monkeypatch.setenv("CIRCLECI_TOKEN_FILE", str(token_file))

    token = load_settings(None).api.resolved_token()

    assert token is not None
    assert token.get_secret_value() == TOKEN


def test_token_beats_token_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file")
    monkeypatch.setenv("CIRCLECI_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("CIRCLECI_TOKEN", TOKEN)

    token = load_settings(None).api.resolved_token()

    assert token is not None
    assert token.get_secret_value() == TOKEN


def test_empty_token_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(" \n")
    monkeypatch.setenv("CIRCLECI_TOKEN_FILE", str(token_file))
    settings = load_settings(None)

    with pytest.raises(ConfigError) as caught:
        settings.api.resolved_token()

    assert caught.value.problems == [f"api.token_file: {str(token_file)!r} is empty"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [("missing", "No such file or directory"), ("a-directory", "Is a directory")],
)
def test_unreadable_token_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, reason: str
) -> None:
    (tmp_path / "a-directory").mkdir()
    token_file = tmp_path / name
    monkeypatch.setenv("CIRCLECI_TOKEN_FILE", str(token_file))
    settings = load_settings(None)

    with pytest.raises(ConfigError) as caught:
        settings.api.resolved_token()

    assert caught.value.problems == [f"api.token_file: cannot read {str(token_file)!r}: {reason}"]


def test_binary_token_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "token"
    token_file.write_bytes(b"\xff\xfe\x00")
    monkeypatch.setenv("CIRCLECI_TOKEN_FILE", str(token_file))

    with pytest.raises(ConfigError) as caught:
        load_settings(None).api.resolved_token()

    assert caught.value.problems == [f"api.token_file: {str(token_file)!r} is not UTF-8 text"]


def test_token_is_not_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCLECI_TOKEN", TOKEN)
    settings = load_settings(None)

    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings)
    assert TOKEN not in repr(settings.api.resolved_token())


def test_token_is_masked_in_effective_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCLECI_TOKEN", TOKEN)

    text = load_settings(None).effective_yaml()

    assert TOKEN not in text
    assert "token: <secret>" in text


def test_token_is_not_in_validation_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCLECI_TOKEN", TOKEN)
    monkeypatch.setenv("CIRCLECI_EXPORTER_COLLECT__INTERVAL", "soon")

    with pytest.raises(ConfigError) as caught:
        load_settings(None)

    assert TOKEN not in str(caught.value)
    assert caught.value.problems == [
        "collect.interval: expected a duration such as 30s, 5m or 1h, got 'soon'"
    ]


def test_token_is_not_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CIRCLECI_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)

    settings = load_settings(None, {"collect": {"interval": "1s"}})
    warn_about_abusive_intervals(settings)

    assert caplog.records  # the warning was logged, and with it the settings' values
    assert TOKEN not in caplog.text
