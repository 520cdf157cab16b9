"""Rules every generated dashboard follows (see the issue "Grafana dashboards as code")."""

import re
from typing import Any

import pytest

from grafana.generate.queries import load_dashboards, panels, queries

DASHBOARDS = load_dashboards()
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
CORE_PANEL_TYPES = {"row", "timeseries", "stat", "table", "bargauge", "heatmap", "state-timeline"}
METRIC_CONTRACT_PREFIXES = ("circleci_", "ALERTS")


def _content_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in panels(dashboard) if panel["type"] != "row"]


def test_stable_uids_and_titles() -> None:
    assert {uid: d["title"] for uid, d in DASHBOARDS.items()} == {
        "circleci-overview": "CircleCI / Overview",
        "circleci-project": "CircleCI / Project",
        "circleci-insights": "CircleCI / Insights",
        "circleci-exporter": "CircleCI / Exporter",
    }


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_datasource_comes_from_a_variable(uid: str) -> None:
    dashboard = DASHBOARDS[uid]
    assert "__inputs" not in dashboard
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in _content_panels(dashboard):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE, variable["name"]


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_firing_alerts_are_annotated(uid: str) -> None:
    annotations = DASHBOARDS[uid]["annotations"]["list"]
    alerts = [a for a in annotations if a.get("expr") == 'ALERTS{alertstate="firing"}']
    assert len(alerts) == 1
    assert alerts[0]["enable"] is True
    assert alerts[0]["datasource"] == DATASOURCE


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_panels_are_core_typed_with_units_and_unique_ids(uid: str) -> None:
    dashboard = DASHBOARDS[uid]
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        assert panel["type"] in CORE_PANEL_TYPES, panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
    for panel in _content_panels(dashboard):
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']} has no unit"
        assert panel.get("description"), f"{panel['title']} has no description"


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_range_vectors_follow_the_time_range(uid: str) -> None:
    for query in queries(DASHBOARDS[uid]):
        # A fixed window like [5m] ignores the zoom level and the scrape interval.
        fixed = re.findall(r"\[\s*\d+[smhdwy]\s*\]", query.expr)
        assert not fixed, f"{query.source}: fixed range {fixed} in {query.expr}"
        if re.search(r"\b(rate|increase)\(", query.expr):
            assert "[$__rate_interval]" in query.expr or "[$__range]" in query.expr, query.source


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_queries_use_only_contract_metrics(uid: str) -> None:
    # Bare words followed by `{`, `[` or `)`/space that look like metric names.
    for query in queries(DASHBOARDS[uid]):
        selectors = re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{|\[)", query.expr)
        for name in selectors:
            assert name.startswith(METRIC_CONTRACT_PREFIXES), f"{query.source}: {name}"


def test_project_dashboard_variables_and_run_links() -> None:
    dashboard = DASHBOARDS["circleci-project"]
    names = [v["name"] for v in dashboard["templating"]["list"]]
    assert names == ["datasource", "project", "branch", "workflow"]
    link_tables = {
        panel["title"]: panel
        for panel in panels(dashboard)
        if any(
            "${__data.fields.url}" in link["url"]
            for link in panel.get("fieldConfig", {}).get("defaults", {}).get("links", [])
        )
    }
    assert set(link_tables) == {"Last workflow runs", "Last job runs"}
    exprs = {
        panel["targets"][0]["expr"].split("{")[0].lstrip("(") for panel in link_tables.values()
    }
    assert exprs == {"circleci_workflow_last_run_info", "circleci_job_last_run_info"}
    for panel in link_tables.values():
        hidden = [
            o
            for o in panel["fieldConfig"]["overrides"]
            if o["matcher"] == {"id": "byName", "options": "url"}
        ]
        assert hidden and {"id": "custom.hidden", "value": True} in hidden[0]["properties"]


def test_overview_status_joins_the_default_branch() -> None:
    status = next(
        p for p in panels(DASHBOARDS["circleci-overview"]) if p["title"] == "Default branch status"
    )
    expr = status["targets"][0]["expr"]
    assert "circleci_workflow_last_completed_status" in expr
    assert "on (project, branch)" in expr and "circleci_project_default_branch_info" in expr
