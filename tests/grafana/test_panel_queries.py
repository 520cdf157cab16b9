"""Every dashboard query runs against real data: exporter --demo → Prometheus → /api/v1/query.

The exporter's demo mode runs the simulated CircleCI organisation in-process. Prometheus scrapes
it every second; once workflow runs have been counted, each panel query is run with its
variables set as a user would pick them (the busiest value of each single-value variable,
All for multi-value ones).
"""

from collections.abc import Callable, Iterator

import pytest

from grafana.generate.queries import expand, label_values_variables, load_dashboards, queries
from tests.conftest import running_demo
from tests.grafana.dashboard_prometheus import GRAFANA_INTERVALS, PrometheusServer
from tests.rules.binaries import wait_until

pytestmark = pytest.mark.e2e

DASHBOARDS = load_dashboards()

# Panels the demo must fill. Others may rightly be empty (no 429s, no webhooks, no approval
# waiting at that moment), but these show the basics every CircleCI organisation has.
MUST_HAVE_DATA = {
    "circleci-overview": {
        "Default branch status",
        "Default-branch workflows failing",
        "Red default branches",
        "Pipelines with errors",
        "Approvals waiting",
        "Workflow throughput by status",
        "Workflow success rate by project",
        "Workflow duration p50 / p95 by project",
        "Job queue time p95 by project",
        "Pipelines by trigger",
        "Flaky tests",
        "Credits used (Insights)",
        "Credits per project (Insights)",
        "Schedules",
    },
    "circleci-project": {
        "Workflow status",
        "Workflow runs by status",
        "Workflow duration distribution",
        "Workflow duration p50 / p95",
        "Consecutive failures",
        "Last completed duration",
        "Last workflow runs",
        "Job breakdown",
        "Job duration p95",
        "Job queue time p95",
        "Last job runs",
        "Test results of the last runs",
    },
    "circleci-insights": {
        "Workflow summary",
        "Success rate",
        "Duration median / p95",
        "Credits used",
        "Flaky tests per project",
        "Most failed tests",
        "Slowest tests",
        "Job summary",
        "Org runs",
        "Org success rate",
        "Org summary per project",
    },
    "circleci-exporter": {
        "Projects collected",
        "Projects failing collection",
        "Series exposed",
        "Exporter version",
        "API requests by endpoint and code",
        "API latency p95 by endpoint",
        "Collection age in intervals",
        "Time since last successful collection",
        "Collection cycle duration p95",
        "Series count",
    },
}


@pytest.fixture(scope="module")
def demo_exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The exporter in --demo mode on a free loopback port; yields its host:port."""

    with running_demo(tmp_path_factory.mktemp("exporter")) as server:
        yield server.url.removeprefix("http://")


@pytest.fixture(scope="module")
def prometheus(
    start_prometheus: Callable[[list[str]], PrometheusServer], demo_exporter: str
) -> PrometheusServer:
    server = start_prometheus([demo_exporter])

    def counted_runs() -> bool:
        # Counters need two scrapes inside the rate window before rate() has a value.
        result = server.query("sum(increase(circleci_workflow_runs_total[1m])) > 0")
        return bool(result["status"] == "success" and result["data"]["result"])

    wait_until(counted_runs, "the demo to complete workflow runs", 180)
    return server


def _busiest(server: PrometheusServer, label: str, candidates: list[str]) -> str:
    """The candidate with the most counted runs: a young demo has not completed runs in every
    project yet, and the test is about panels that have data to show."""
    result = server.query(f"sum by ({label}) (circleci_workflow_runs_total)")
    runs = {
        r["metric"].get(label): float(r["value"][1])
        for r in result["data"]["result"]
        if result["status"] == "success"
    }
    return max(candidates, key=lambda value: (runs.get(value, 0.0), value))


def _variable_values(server: PrometheusServer, uid: str) -> dict[str, str]:
    values = dict(GRAFANA_INTERVALS)
    for variable in label_values_variables(DASHBOARDS[uid]):
        found = sorted(server.label_values(expand(variable.selector, values), variable.label))
        assert found, f"{uid}: variable {variable.name} has no values"
        if variable.multi and variable.all_value:
            values[variable.name] = variable.all_value
        else:
            values[variable.name] = _busiest(server, variable.label, found)
    return values


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_every_panel_query_runs_and_the_essential_ones_have_data(
    prometheus: PrometheusServer, uid: str
) -> None:
    values = _variable_values(prometheus, uid)
    errors: list[str] = []
    filled_sources: set[str] = set()
    for query in queries(DASHBOARDS[uid]):
        expr = expand(query.expr, values)
        result = prometheus.query(expr)
        if result["status"] != "success":
            errors.append(f"{query.source}: {result.get('error')}\n  {expr}")
        elif result["data"]["result"]:
            filled_sources.add(query.source)
    assert not errors, "\n".join(errors)
    # A panel has data when any of its queries returns something (a table joins several).
    empty_panels = MUST_HAVE_DATA[uid] - filled_sources
    assert not empty_panels, f"{uid}: no data for {sorted(empty_panels)} with {values}"


def test_must_have_list_names_real_panels() -> None:
    for uid, titles in MUST_HAVE_DATA.items():
        sources = {query.source for query in queries(DASHBOARDS[uid])}
        assert titles <= sources, f"{uid}: unknown panels {sorted(titles - sources)}"


def test_job_families_keep_the_circleci_job_name_in_their_job_label(
    prometheus: PrometheusServer,
) -> None:
    """The shipped scrape config honours the exporter's `job` label: the per-job panels and
    rules group by the CircleCI job, not by the scrape job (which would be `circleci`)."""
    jobs = set(prometheus.label_values("circleci_job_runs_total", "job"))
    assert jobs and "circleci" not in jobs, jobs
    renamed = prometheus.query('count({__name__=~"circleci_.+", exported_job!=""})')
    assert renamed["status"] == "success" and renamed["data"]["result"] == []
    scrape_job = prometheus.query('up{job="circleci"}')
    assert scrape_job["data"]["result"], "up keeps the scrape job's name"
