"""`effective_yaml()`: what `--check-config` prints, readable and loadable again."""

from collections.abc import Callable
from pathlib import Path

import yaml

from exporter.settings import load_settings


def test_durations_are_printed_as_durations() -> None:
    data = yaml.safe_load(load_settings(None, {"collect": {"interval": 90}}).effective_yaml())

    assert data["collect"]["interval"] == "1m30s"
    assert data["api"]["timeout"] == "30s"


def test_token_is_null_when_unset() -> None:
    data = yaml.safe_load(load_settings(None).effective_yaml())

    assert data["api"]["token"] is None


def test_output_loads_back_to_the_same_settings(write_config: Callable[[str], Path]) -> None:
    original = load_settings(
        write_config("projects:\n  - slug: github/acme/api\ncollect:\n  interval: 45s\n")
    )
    data = yaml.safe_load(original.effective_yaml())
    del data["api"]["token"]  # masked; a real file would hold no token either

    reloaded = load_settings(write_config(yaml.safe_dump(data)))

    assert reloaded == original
