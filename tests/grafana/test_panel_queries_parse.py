"""Every dashboard expression parses and evaluates in a real Prometheus (no exporter needed).

Prometheus 2.42 has no stand-alone PromQL parser command, so an empty Prometheus evaluates each
expression: a syntax error or a bad grouping comes back as an HTTP 400 with `errorType`.
"""

from collections.abc import Callable

import pytest

from grafana.generate.queries import (
    DashboardQuery,
    expand,
    label_values_variables,
    load_dashboards,
    queries,
)
from tests.grafana.dashboard_prometheus import GRAFANA_INTERVALS, PrometheusServer

DASHBOARDS = load_dashboards()
ALL_QUERIES = [query for dashboard in DASHBOARDS.values() for query in queries(dashboard)]

# Stand-ins shaped like real values: a project slug with slashes, a branch with a slash.
PLACEHOLDERS = {
    "project": "gh/acme/api",
    "branch": "release/2.4",
    "workflow": "build-and-test",
    "window": "last-30-days",
}


def _values_for(dashboard_uid: str) -> dict[str, str]:
    values = dict(GRAFANA_INTERVALS)
    for variable in label_values_variables(DASHBOARDS[dashboard_uid]):
        values[variable.name] = (
            variable.all_value
            if variable.multi and variable.all_value
            else PLACEHOLDERS[variable.name]
        )
    return values


@pytest.fixture(scope="module")
def prometheus(start_prometheus: Callable[[list[str]], PrometheusServer]) -> PrometheusServer:
    return start_prometheus([])


def test_the_dashboards_have_queries() -> None:
    assert len(DASHBOARDS) == 4
    assert len(ALL_QUERIES) > 60


@pytest.mark.parametrize(
    "query", ALL_QUERIES, ids=[f"{q.dashboard}/{q.source}" for q in ALL_QUERIES]
)
def test_query_is_valid_promql(prometheus: PrometheusServer, query: DashboardQuery) -> None:
    expr = expand(query.expr, _values_for(query.dashboard))
    result = prometheus.query(expr)
    assert result["status"] == "success", f"{result.get('error')}\n{expr}"


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_variable_selectors_are_valid(prometheus: PrometheusServer, uid: str) -> None:
    values = _values_for(uid)
    for variable in label_values_variables(DASHBOARDS[uid]):
        # label_values(selector, label) runs the selector as a series match.
        assert prometheus.label_values(expand(variable.selector, values), variable.label) == []
