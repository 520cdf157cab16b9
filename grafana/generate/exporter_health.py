"""CircleCI / Exporter: is the exporter itself healthy, and how hard does it use the API?

With sharding (docs/architecture.md, Sharding) several exporters, one per shard, are scraped as
instances of one job: the `instance` variable picks them, and the panels about the exporter
itself show each instance on its own, since one shard's trouble is not the others'.
"""

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.models import common as common_models

from .common import (
    EXPORTER_UID,
    bar_gauge_panel,
    base_dashboard,
    label_variable,
    query,
    row,
    stat_panel,
    timeseries_panel,
)

# Every query keeps to the instances picked in the `instance` variable.
INSTANCES = 'instance=~"$instance"'


def _status_row(dashboard: dashboard_builders.Dashboard) -> dashboard_builders.Dashboard:
    projects_up = stat_panel(
        "Projects collected",
        "Projects whose last collection succeeded, out of all tracked projects.",
        "none",
        [
            query(f"sum(circleci_up{{{INSTANCES}}})", "up", instant=True),
            query(f"count(circleci_up{{{INSTANCES}}})", "tracked", instant=True),
        ],
        steps=((None, "blue"),),
        span=6,
    )
    projects_down = stat_panel(
        "Projects failing collection",
        "Projects whose last collection failed.",
        "none",
        [query(f"count(circleci_up{{{INSTANCES}}} == 0) or vector(0)", instant=True)],
        steps=((None, "green"), (1, "red")),
        span=6,
    )
    series = stat_panel(
        "Series exposed",
        "Series in the exporters' last snapshots, all picked instances together.",
        "none",
        [query(f"sum(circleci_exporter_series{{{INSTANCES}}})", instant=True)],
        steps=((None, "blue"),),
        span=6,
    )
    version = stat_panel(
        "Exporter version",
        "Version of each running exporter and of its Python.",
        "none",
        [
            query(
                f"circleci_exporter_build_info{{{INSTANCES}}}",
                "{{version}} (Python {{python_version}})",
                instant=True,
            )
        ],
        steps=((None, "text"),),
        span=6,
    ).text_mode(common_models.BigValueTextMode.NAME)
    shards = bar_gauge_panel(
        "Projects per shard",
        "Projects each exporter tracks: with --shard/--total-shards, those whose slug hashes to"
        " its shard; one exporter unsharded is shard 0 of 1.",
        "none",
        [
            query(
                f"circleci_exporter_shard_projects{{{INSTANCES}}}\n"
                "* on (job, instance) group_left (shard, total_shards)"
                f" circleci_exporter_shard_info{{{INSTANCES}}}",
                "shard {{shard}} of {{total_shards}} · {{instance}}",
                instant=True,
            )
        ],
        steps=((None, "blue"),),
        span=24,
    )
    return (
        dashboard.with_row(row("Status"))
        .with_panel(projects_up)
        .with_panel(projects_down)
        .with_panel(series)
        .with_panel(version)
        .with_panel(shards)
    )


def _api_row(dashboard: dashboard_builders.Dashboard) -> dashboard_builders.Dashboard:
    requests = timeseries_panel(
        "API requests by endpoint and code",
        "CircleCI API requests per second, all picked instances together (shards sharing a"
        " token share its rate limit); `code` is the HTTP status or `error`.",
        "reqps",
        [
            query(
                "sum by (endpoint, code) "
                f"(rate(circleci_exporter_api_requests_total{{{INSTANCES}}}[$__rate_interval]))",
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
                "(rate(circleci_exporter_api_request_duration_seconds_bucket"
                f"{{{INSTANCES}}}[$__rate_interval])))",
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
                f"(rate(circleci_exporter_api_retries_total{{{INSTANCES}}}[$__rate_interval]))",
                "{{endpoint}} {{reason}}",
            )
        ],
        stacked=True,
    )
    throttled = timeseries_panel(
        "Rate-limited responses (429)",
        "Responses per second in which CircleCI asked an exporter to slow down, per instance.",
        "reqps",
        [
            query(
                "sum by (instance, endpoint) (rate(circleci_exporter_api_requests_total"
                f'{{code="429", {INSTANCES}}}[$__rate_interval]))',
                "{{instance}} · {{endpoint}}",
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
    age = f"time() - circleci_exporter_last_success_timestamp_seconds{{{INSTANCES}}}"
    freshness = bar_gauge_panel(
        "Collection age in intervals",
        "Age of the last successful collection divided by that collector's interval, per"
        " project: about 1 is healthy, above 3 means collections fail or fall behind. Each"
        " project is divided by the interval of the exporter (shard) that collects it.",
        "none",
        [
            query(
                f"({age})\n/ on (job, instance, collector) group_left ()"
                f" circleci_exporter_collect_interval_seconds{{{INSTANCES}}}",
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
                f"(rate(circleci_exporter_collect_errors_total{{{INSTANCES}}}[$__rate_interval]))",
                "{{project}} · {{collector}}",
            )
        ],
    )
    cycle = timeseries_panel(
        "Collection cycle duration p95",
        "95th percentile of how long one collection cycle takes, per instance and collector.",
        "s",
        [
            query(
                "histogram_quantile(0.95, sum by (instance, le, collector) "
                "(rate(circleci_exporter_collect_duration_seconds_bucket"
                f"{{{INSTANCES}}}[$__rate_interval])))",
                "{{instance}} · {{collector}}",
            )
        ],
    )
    series = timeseries_panel(
        "Series count",
        "Series in each exporter's snapshot over time; growth means more branches, jobs or tests.",
        "none",
        [query(f"sum by (instance) (circleci_exporter_series{{{INSTANCES}}})", "{{instance}}")],
    )
    webhooks = timeseries_panel(
        "Webhook events",
        "Webhook deliveries per second, by event and outcome; other_shard: an event for a"
        " project another shard owns (its webhook points at the wrong shard: rerun webhooks"
        " sync --url-template).",
        "ops",
        [
            query(
                "sum by (event, outcome) "
                f"(rate(circleci_exporter_webhook_events_total{{{INSTANCES}}}[$__rate_interval]))",
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
        " freshness and errors per project; the number of series it exposes; with sharding,"
        " each shard's exporter.",
    ).with_variable(
        label_variable("instance", "Instance", "circleci_exporter_build_info", multi=True)
    )
    return _collection_row(_api_row(_status_row(dashboard)))
