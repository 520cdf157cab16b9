"""Renamed settings: `collect.project_refresh_interval` (project details) became
`collect.project_details_interval`, next to the feed's `collect.project_refresh` (list reads).
The old key still works, with a deprecation warning; both keys at once are refused."""

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from exporter.settings import ConfigError, load_settings


def test_the_old_key_sets_the_new_one_and_warns(
    write_config: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="exporter.settings"):
        settings = load_settings(write_config("collect:\n  project_refresh_interval: 1h\n"))
    assert settings.collect.project_details_interval == 3600.0
    assert settings.collect.project_refresh == 600.0  # the feed's setting is untouched
    [record] = caplog.records
    assert record.getMessage() == "deprecated setting; use its new name"
    assert record.__dict__["new_key"] == "collect.project_details_interval"


def test_the_old_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCLECI_EXPORTER_COLLECT__PROJECT_REFRESH_INTERVAL", "2h")
    assert load_settings(None).collect.project_details_interval == 7200.0


def test_both_keys_are_refused(write_config: Callable[[str], Path]) -> None:
    path = write_config(
        "collect:\n  project_refresh_interval: 1h\n  project_details_interval: 2h\n"
    )
    with pytest.raises(ConfigError, match="project_refresh_interval is the old name"):
        load_settings(path)


def test_the_feed_settings_default_on() -> None:
    collect = load_settings(None).collect
    assert (collect.org_feed, collect.project_refresh, collect.org_feed_max_pages) == (
        True, 600.0, 10,
    )  # fmt: skip
