"""`--log.level` takes Prometheus's spelling (`warn`) as well as Python's (`warning`)."""

import pytest

from exporter.settings import load_settings


@pytest.mark.parametrize(
    ("given", "level"),
    [
        ("debug", "debug"),
        ("info", "info"),
        ("warn", "warning"),
        ("WARN", "warning"),
        ("warning", "warning"),
        ("error", "error"),
    ],
)
def test_log_levels(given: str, level: str) -> None:
    assert load_settings(None, {"log": {"level": given}}).log.level == level
