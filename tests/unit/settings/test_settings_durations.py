"""Durations: Prometheus-style strings or plain seconds, and the warning on aggressive polling."""

import logging

import pytest

from exporter.durations import format_duration, parse_duration
from exporter.settings import load_settings, warn_about_abusive_intervals


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("7d", 604800.0),
        ("1w", 604800.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("45", 45.0),
        (" 2m ", 120.0),
        (90, 90.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("value", ["soon", "5 m", "5M", "m5", "1h 30m", "", True, None, [30]])
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="expected a duration such as 30s, 5m or 1h"):
        parse_duration(value)


@pytest.mark.parametrize("value", [0, "0s", -5, "-5"])
def test_parse_duration_rejects_non_positive(value: object) -> None:
    with pytest.raises(ValueError, match="must be a positive duration"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"), [(30, "30s"), (90, "1m30s"), (900, "15m"), (86400, "1d"), (0.5, "0.5s")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_interval_of_one_second_is_allowed() -> None:
    assert load_settings(None, {"collect": {"interval": "1s"}}).collect.interval == 1.0


def test_plain_seconds_in_config() -> None:
    assert load_settings(None, {"collect": {"interval": 45}}).collect.interval == 45.0


def test_aggressive_interval_against_circleci_com_warns(caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(None, {"collect": {"interval": "5s"}})

    with caplog.at_level(logging.WARNING, logger="exporter.settings"):
        warn_about_abusive_intervals(settings)

    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "polling interval is aggressive for circleci.com and may be rate limited"
    )
    assert record.__dict__["key"] == "collect.interval"
    assert record.__dict__["value"] == "5s"
    assert record.__dict__["suggested_minimum"] == "10s"


def test_aggressive_insights_interval_warns(caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(None, {"collect": {"insights_interval": "1m"}})

    with caplog.at_level(logging.WARNING, logger="exporter.settings"):
        warn_about_abusive_intervals(settings)

    assert [r.__dict__["key"] for r in caplog.records] == ["collect.insights_interval"]


def test_gentle_intervals_do_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(None, {"collect": {"interval": "10s", "insights_interval": "5m"}})

    with caplog.at_level(logging.WARNING, logger="exporter.settings"):
        warn_about_abusive_intervals(settings)

    assert caplog.records == []


def test_fast_polling_of_another_api_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(
        None, {"collect": {"interval": "1s"}, "api": {"url": "http://127.0.0.1:8080/api"}}
    )

    with caplog.at_level(logging.WARNING, logger="exporter.settings"):
        warn_about_abusive_intervals(settings)

    assert caplog.records == []
