"""Every PromQL expression of the generated dashboards, and Grafana's variable expansion.

The tests send these expressions to a real Prometheus; keeping the walk over the JSON here means
every check sees the same list of queries Grafana would run.
"""

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .render import DASHBOARDS_DIR

# `$1` in label_replace is a regex group, not a variable: Grafana leaves names it does not
# know alone, and no dashboard variable starts with a digit.
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))")
_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$", re.DOTALL)


@dataclass(frozen=True)
class DashboardQuery:
    """One expression and where it lives: `source` is a panel title or `annotation: <name>`."""

    dashboard: str
    source: str
    expr: str


@dataclass(frozen=True)
class LabelValuesVariable:
    """A template variable listing the values of `label` on the series `selector` matches."""

    name: str
    selector: str
    label: str
    multi: bool
    all_value: str | None


def load_dashboards(directory: Path = DASHBOARDS_DIR) -> dict[str, dict[str, Any]]:
    """uid → dashboard JSON of every file in `directory`."""
    dashboards: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        dashboards[dashboard["uid"]] = dashboard
    return dashboards


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: Mapping[str, Any]) -> Iterator[DashboardQuery]:
    uid = dashboard["uid"]
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield DashboardQuery(uid, panel["title"], target["expr"])
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if "expr" in annotation:
            yield DashboardQuery(uid, f"annotation: {annotation['name']}", annotation["expr"])


def label_values_variables(dashboard: Mapping[str, Any]) -> list[LabelValuesVariable]:
    """The query variables in dashboard order, which is also the order they depend on each other."""
    variables = []
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable["type"] != "query":
            continue
        match = _LABEL_VALUES.match(variable["query"])
        if match is None:
            raise ValueError(f"variable {variable['name']}: not a label_values() query")
        variables.append(
            LabelValuesVariable(
                name=variable["name"],
                selector=match["selector"].strip(),
                label=match["label"],
                multi=bool(variable.get("multi")),
                all_value=variable.get("allValue"),
            )
        )
    return variables


def expand(expr: str, values: Mapping[str, str]) -> str:
    """Substitute `$name` and `${name}` as Grafana does; an unknown variable is an error."""

    def substitute(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        if name not in values:
            raise KeyError(f"unknown variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(substitute, expr)
