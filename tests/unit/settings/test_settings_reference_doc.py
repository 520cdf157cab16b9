"""docs/configuration.md is generated from the settings model and must match it."""

import subprocess
import sys
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from exporter.settings import Settings
from exporter.settings_doc import render

ROOT = Path(__file__).parents[3]
REFERENCE = ROOT / "docs" / "configuration.md"


def _sections() -> list[tuple[str, type[BaseModel]]]:
    sections = []
    for name, field in Settings.model_fields.items():
        args = typing.get_args(field.annotation)  # list[ProjectSettings] → its item model
        model = args[0] if args else field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        sections.append((name, model))
    return sections


def test_reference_is_up_to_date() -> None:
    generated = subprocess.run(
        [sys.executable, "-m", "exporter.settings_doc"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert generated == REFERENCE.read_text(), (
        "docs/configuration.md is stale: run "
        "`python -m exporter.settings_doc > docs/configuration.md`"
    )


@pytest.mark.parametrize(("section", "model"), _sections())
def test_every_key_is_documented(section: str, model: type[BaseModel]) -> None:
    text = render()

    assert f"### `{section}`" in text
    for key, field in model.model_fields.items():
        assert field.description, f"{section}.{key} has no description"
        assert f"| `{key}` |" in text


def test_env_var_form_is_listed() -> None:
    text = render()

    assert "`CIRCLECI_EXPORTER_COLLECT__INTERVAL`" in text
    assert "`CIRCLECI_EXPORTER_WEB__LISTEN_ADDRESS`" in text


@pytest.mark.parametrize(
    "name",
    ["CIRCLECI_TOKEN", "CIRCLECI_TOKEN_FILE", "CIRCLECI_API_URL", "CIRCLECI_EXPORTER_CONFIG"],
)
def test_special_env_vars_are_listed(name: str) -> None:
    assert f"| `{name}` |" in render()


@pytest.mark.parametrize(
    "flag",
    [
        "--config FILE",
        "--web.listen-address",
        "--web.telemetry-path",
        "--log.level",
        "--log.format",
        "--check-config",
        "--demo",
    ],
)
def test_flags_are_listed(flag: str) -> None:
    assert flag in render()


def test_defaults_are_shown_in_their_config_spelling() -> None:
    text = render()

    assert "| `interval` | duration | `30s` |" in text
    assert "| `insights_interval` | duration | `15m` |" in text
    assert "| `url` | string | `https://circleci.com/api` |" in text
    assert "| `slug` | string | required |" in text
