"""The configuration reference, generated from the settings model.

`python -m exporter.settings_doc > docs/configuration.md`; a test fails when the file is stale.
"""

from __future__ import annotations

import argparse
import functools
import json
import types
import typing
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from exporter.cli import build_parser
from exporter.durations import format_duration
from exporter.settings import Settings, duration_fields

ENV_PREFIX = "CIRCLECI_EXPORTER_"

_SPECIAL_ENV = (
    ("CIRCLECI_TOKEN", "`api.token`", "The CircleCI personal API token. Never logged."),
    ("CIRCLECI_TOKEN_FILE", "`api.token_file`", "A file holding the token (e.g. a secret mount)."),
    ("CIRCLECI_API_URL", "`api.url`", "The API root, default `https://circleci.com/api`."),
    ("CIRCLECI_EXPORTER_CONFIG", "`--config`", "The YAML config file, when `--config` is absent."),
    (
        "CIRCLECI_WEBHOOK_SECRET",
        "`webhooks.secret`",
        "Webhook signing secrets, comma-separated (several during a rotation). Never logged.",
    ),
)

_SCALAR_NAMES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    Path: "path",
    SecretStr: "secret string",
}


def _without_none(annotation: Any) -> Any:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _type_name(annotation: Any, duration: bool = False) -> str:
    if duration:
        return "duration"
    annotation = _without_none(annotation)
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(f"`{v}`" for v in typing.get_args(annotation))
    if typing.get_origin(annotation) is list:
        return f"list of {_type_name(typing.get_args(annotation)[0])}s"
    return _SCALAR_NAMES.get(annotation, str(annotation))


def _default(field: FieldInfo, duration: bool) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if duration:
        return f"`{format_duration(value)}`"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(value)}`"


def _range(field: FieldInfo, duration: bool) -> str:
    """The documented range of a number, from the field's constraints."""
    show = format_duration if duration else (lambda v: f"{v:g}" if isinstance(v, float) else str(v))
    low = high = ""
    for rule in field.metadata:
        if isinstance(rule, annotated_types.Gt):
            low = f"> {show(rule.gt)}"  # type: ignore[arg-type]
        elif isinstance(rule, annotated_types.Ge):
            low = f">= {show(rule.ge)}"  # type: ignore[arg-type]
        elif isinstance(rule, annotated_types.Le):
            high = f"<= {show(rule.le)}"  # type: ignore[arg-type]
    if duration and not low:
        low = "> 0s"
    return f" Range: {', '.join(p for p in (low, high) if p)}." if low or high else ""


def _cell(text: str) -> str:
    # `<org-id>` would otherwise be read as an HTML tag and vanish from the rendered page.
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _key_table(model: type[BaseModel], env_section: str | None) -> list[str]:
    durations = set(duration_fields(model))
    head = ["Key", "Type", "Default"] + (["Environment"] if env_section else []) + ["Description"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, field in model.model_fields.items():
        duration = name in durations
        row = [f"`{name}`", _type_name(field.annotation, duration), _default(field, duration)]
        if env_section:
            row.append(f"`{ENV_PREFIX}{env_section.upper()}__{name.upper()}`")
        row.append((field.description or "") + _range(field, duration))
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return lines


def _section(name: str, field: FieldInfo) -> list[str]:
    annotation = field.annotation
    if typing.get_origin(annotation) is list:
        item: type[BaseModel] = typing.get_args(annotation)[0]
        return [
            f"### `{name}` (list)",
            "",
            f"{field.description} Each item:",
            "",
            *_key_table(item, env_section=None),
            "",
            f"From the environment the whole list is `{ENV_PREFIX}{name.upper()}`, as JSON.",
            "",
        ]
    assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return [
        f"### `{name}`",
        "",
        (annotation.__doc__ or "").strip(),
        "",
        *_key_table(annotation, env_section=name),
        "",
    ]


def _help_text() -> str:
    parser = build_parser()
    # A fixed width keeps the generated file independent of the terminal that runs it.
    parser.formatter_class = functools.partial(argparse.HelpFormatter, width=100)
    return parser.format_help().rstrip()


def render() -> str:
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m exporter.settings_doc > docs/configuration.md`;"
        " do not edit by hand. -->",
        "",
        "Sources, later ones win: defaults < YAML file (`--config FILE` or"
        " `CIRCLECI_EXPORTER_CONFIG`) < environment < command-line flags. Unknown keys are"
        " errors at every level. `circleci-exporter --check-config` validates the sources and"
        " prints the effective configuration with the token masked.",
        "",
        "Durations are Prometheus-style (`30s`, `5m`, `1h30m`, `7d`) or plain seconds. Every"
        " number must be finite (`.nan`, `.inf` and `1e999` are refused) and inside its range.",
        "",
        "## Environment variables",
        "",
        f"Any key below is also `{ENV_PREFIX}<SECTION>__<KEY>` (e.g."
        f" `{ENV_PREFIX}COLLECT__INTERVAL=1m`). These names follow CircleCI's own conventions"
        " and win over the prefixed form:",
        "",
        "| Variable | Sets | Description |",
        "| --- | --- | --- |",
        *(f"| `{env}` | {target} | {text} |" for env, target, text in _SPECIAL_ENV),
        "",
        "## Command-line flags",
        "",
        "Each `--section.key` flag sets `section.key` (dashes become underscores);"
        " `--shard`, `--total-shards` and `--shard.from-pod-name` set the `sharding` keys"
        " (kube-state-metrics' spelling).",
        "",
        "```text",
        _help_text(),
        "```",
        "",
        "## Keys",
        "",
    ]
    for name, field in Settings.model_fields.items():
        lines += _section(name, field)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
