"""Turns the dashboard builders into the JSON files committed under grafana/dashboards/."""

import json
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from . import exporter_health, insights, overview, project

DASHBOARDS_DIR = Path(__file__).resolve().parent.parent / "dashboards"

BUILDERS: dict[str, Callable[[], dashboard_builders.Dashboard]] = {
    "circleci-overview.json": overview.build,
    "circleci-project.json": project.build,
    "circleci-insights.json": insights.build,
    "circleci-exporter.json": exporter_health.build,
}


def to_json(builder: dashboard_builders.Dashboard) -> str:
    """Stable JSON text: sorted keys, and panel ids numbered in layout order.

    Grafana assigns missing panel ids at load time, which would make links to a panel
    (`viewPanel=`) change between loads; numbering them here keeps them stable.
    """
    model = builder.build()
    for panel_id, panel in enumerate(model.panels or [], start=1):
        panel.id_val = panel_id
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_all() -> dict[str, str]:
    """File name → JSON text of every dashboard."""
    return {name: to_json(build()) for name, build in BUILDERS.items()}
