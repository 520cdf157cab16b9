"""CircleCI / Exporter: is the exporter itself healthy, and how hard does it use the API?"""

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.models import common as common_models

from .common import (
    EXPORTER_UID,
    bar_gauge_panel,
    base_dashboard,
    query,
    row,
    stat_panel,
    timeseries_panel,
)


def _status_row(dashboard: dashboard_builders.Dashboard) -> dashboard_builders.Dashboard:
    projects_up = stat_panel(
        "Projects collected",
        "Projects whose last collection succeeded, out of all tracked projects.",
        "none",
        [
            query("sum(circleci_up)", "up", instant=True),
            query("count(circleci_up)", "tracked", instant=True),
        ],
        steps=((None, "blue"),),
        span=6,
    )
    projects_down = stat_panel(
        "Projects failing collection",
        "Projects whose last collection failed.",
        "none",
        [query("count(circleci_up == 0) or vector(0)", instant=True)],
        steps=((None, "green"), (1, "red")),
        span=6,
    )
    series = stat_panel(
        "Series exposed",
        "Series in the exporter's last snapshot.",
        "none",
        [query("sum(circleci_exporter_series)", instant=True)],
        steps=((None, "blue"),),
        span=6,
    )
    version = stat_panel(
        "Exporter version",
        "Version of the running exporter and of its Python.",
        "none",
        [
            query(
                "circleci_exporter_build_info",
                "{{version}} (Python {{python_version}})",
                instant=True,
            )
        ],
        steps=((None, "text"),),
        span=6,
    ).text_mode(common_models.BigValueTextMode.NAME)
    return (
        dashboard.with_row(row("Status"))
        .with_panel(projects_up)
        .with_panel(projects_down)
        .with_panel(series)
        .with_panel(version)
    )


def _api_row(dashboard: dashboard_builders.Dashboard) -> dashboard_builders.Dashboard:
    requests = timeseries_panel(
        "API requests by endpoint and code",
        "CircleCI API requests per second; `code` is the HTTP status or `error`.",
        "reqps",
        [
            query(
                "sum by (endpoint, code) "
                "(rate(circleci_exporter_api_requests_total[$__rate_interval]))",
                "{{endpoint}} {{code}}",
            )
        ],
        stacked=True,
    )
    latency = timeseries_panel(
        "API latency p95 by endpoint",
        "95th percentile of CircleCI API request durations.",
        "s",
        [
            query(
                "histogram_quantile(0.95, sum by (le, endpoint) "
                "(rate(circleci_exporter_api_request_duration_seconds_bucket[$__rate_interval])))",
                "{{endpoint}}",
            )
        ],
    )
    retries = timeseries_panel(
        "API retries by reason",
        "Retried requests per second, after a 429, a 5xx or a timeout.",
        "reqps",
        [
            query(
                "sum by (endpoint, reason) "
                "(rate(circleci_exporter_api_retries_total[$__rate_interval]))",
                "{{endpoint}} {{reason}}",
            )
        ],
        stacked=True,
    )
    throttled = timeseries_panel(
        "Rate-limited responses (429)",
        "Responses per second in which CircleCI asked the exporter to slow down.",
        "reqps",
        [
            query(
                'sum by (endpoint) (rate(circleci_exporter_api_requests_total{code="429"}'
                "[$__rate_interval]))",
                "{{endpoint}}",
            )
        ],
    )
    return (
        dashboard.with_row(row("CircleCI API"))
        .with_panel(requests)
        .with_panel(latency)
        .with_panel(retries)
        .with_panel(throttled)
    )


def _collection_row(dashboard: dashboard_builders.Dashboard) -> dashboard_builders.Dashboard:
    age = "time() - circleci_exporter_last_success_timestamp_seconds"
    freshness = bar_gauge_panel(
        "Collection age in intervals",
        "Age of the last successful collection divided by that collector's interval, per"
        " project: about 1 is healthy, above 3 means collections fail or fall behind.",
        "none",
        [
            query(
                f"({age})\n/ on (collector) group_left ()"
                " max by (collector) (circleci_exporter_collect_interval_seconds)",
                "{{project}} · {{collector}}",
                instant=True,
            )
        ],
        steps=((None, "green"), (2, "orange"), (3, "red")),
    )
    staleness = timeseries_panel(
        "Time since last successful collection",
        "Age of the last successful collection per project and collector.",
        "s",
        [query(age, "{{project}} · {{collector}}")],
    )
    errors = timeseries_panel(
        "Collection errors",
        "Failed collections per second, by project and collector.",
        "ops",
        [
            query(
                "sum by (project, collector) "
                "(rate(circleci_exporter_collect_errors_total[$__rate_interval]))",
                "{{project}} · {{collector}}",
            )
        ],
    )
    cycle = timeseries_panel(
        "Collection cycle duration p95",
        "95th percentile of how long one collection cycle takes, per collector.",
        "s",
        [
            query(
                "histogram_quantile(0.95, sum by (le, collector) "
                "(rate(circleci_exporter_collect_duration_seconds_bucket[$__rate_interval])))",
                "{{collector}}",
            )
        ],
    )
    series = timeseries_panel(
        "Series count",
        "Series in the exporter's snapshot over time; growth means more branches, jobs or tests.",
        "none",
        [query("sum(circleci_exporter_series)", "series")],
    )
    webhooks = timeseries_panel(
        "Webhook events",
        "Webhook deliveries per second, by event and outcome.",
        "ops",
        [
            query(
                "sum by (event, outcome) "
                "(rate(circleci_exporter_webhook_events_total[$__rate_interval]))",
                "{{event}} {{outcome}}",
            )
        ],
        stacked=True,
    )
    return (
        dashboard.with_row(row("Collection"))
        .with_panel(freshness)
        .with_panel(staleness)
        .with_panel(errors)
        .with_panel(cycle)
        .with_panel(series)
        .with_panel(webhooks)
    )


def build() -> dashboard_builders.Dashboard:
    dashboard = base_dashboard(
        EXPORTER_UID,
        "CircleCI / Exporter",
        "The exporter itself: CircleCI API requests, latency, retries and 429s; collection"
        " freshness and errors per project; the number of series it exposes.",
    )
    return _collection_row(_api_row(_status_row(dashboard)))
