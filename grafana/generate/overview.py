"""CircleCI / Overview: the health of every project at a glance."""

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.models import dashboard as dashboard_models

from .common import (
    OVERVIEW_UID,
    PROJECT_UID,
    RUNS_PER_HOUR,
    Column,
    bar_gauge_panel,
    base_dashboard,
    hidden,
    label_variable,
    link,
    merged_table_panel,
    query,
    row,
    stat_panel,
    status_code_expr,
    status_code_mappings,
    timeseries_panel,
)

# Keeps only series of each project's default branch; the info metric's value is 1.
ON_DEFAULT_BRANCH = "* on (project, branch) group_left () circleci_project_default_branch_info"

DEFAULT_BRANCH_PASSING = (
    "max by (project, workflow) ("
    f'circleci_workflow_last_completed_status{{status="success"}} {ON_DEFAULT_BRANCH})'
)

# The failing jobs of red default-branch workflows, one row per job.
_RED = (
    "max by (project, branch, workflow) ("
    'circleci_workflow_last_completed_status{status=~"failed|error"}'
    f" {ON_DEFAULT_BRANCH})"
)
_FAILING_JOBS = (
    "max by (project, branch, workflow, job, step, url) (circleci_job_last_failed_step_info)"
)


def _per_failing_job(workflow_value: str) -> str:
    """`workflow_value` of each red default-branch workflow, on each of its failing jobs' rows
    (and on one row of its own when no failing job is known)."""
    red_value = f"(max by (project, branch, workflow) ({workflow_value}) and ({_RED} == 1))"
    return (
        f"({_FAILING_JOBS} * on (project, branch, workflow) group_left () {red_value})"
        f" or on (project, branch, workflow) {red_value}"
    )


PROJECT_LINK = (
    f"/d/{PROJECT_UID}/circleci-project?var-datasource=${{datasource}}"
    "&var-project=${__field.labels.project}&${__url_time_range}"
)


def _health_row(dashboard: dashboard_builders.Dashboard) -> dashboard_builders.Dashboard:
    passing = (
        stat_panel(
            "Default branch status",
            "Last completed run of every workflow on each project's default branch: green when it"
            " succeeded, red for any other terminal status. Click a tile to open the project.",
            "none",
            [query(DEFAULT_BRANCH_PASSING, "{{project}} · {{workflow}}", instant=True)],
            span=24,
            height=6,
            steps=((None, "red"), (1, "green")),
        )
        .mappings(
            [
                dashboard_models.ValueMap(
                    options={
                        "0": dashboard_models.ValueMappingResult(text="failing", color="red"),
                        "1": dashboard_models.ValueMappingResult(text="passing", color="green"),
                    }
                )
            ]
        )
        .data_links([link("Open project dashboard", PROJECT_LINK)])
    )
    failing_count = stat_panel(
        "Default-branch workflows failing",
        "Workflows whose last completed run on the default branch did not succeed.",
        "none",
        [query(f"count({DEFAULT_BRANCH_PASSING} == 0) or vector(0)", instant=True)],
        steps=((None, "green"), (1, "red")),
    )
    config_errors = stat_panel(
        "Pipelines with errors",
        "Pipelines that errored in the time range (config, config-fetch, ...), all projects.",
        "none",
        [
            query(
                "sum(increase(circleci_pipeline_errors_total[$__range])) or vector(0)",
                instant=True,
            )
        ],
        steps=((None, "green"), (1, "orange")),
    )
    approvals = stat_panel(
        "Approvals waiting",
        "Workflows now on hold waiting for an approval.",
        "none",
        [
            query(
                "count(circleci_workflow_on_hold_since_timestamp_seconds) or vector(0)",
                instant=True,
            )
        ],
        steps=((None, "green"), (1, "purple")),
    )
    oldest_approval = stat_panel(
        "Oldest approval waiting",
        "How long the oldest workflow waiting for an approval has been on hold.",
        "s",
        [
            query(
                "time() - min(circleci_workflow_on_hold_since_timestamp_seconds)",
                instant=True,
            )
        ],
        steps=((None, "green"), (3600, "orange"), (86400, "red")),
    ).no_value("none waiting")
    flaky = stat_panel(
        "Flaky tests",
        "Flaky tests CircleCI Insights reports, all projects.",
        "none",
        [query("sum(circleci_insights_flaky_tests)", instant=True)],
        steps=((None, "green"), (1, "orange")),
    )
    credits = stat_panel(
        "Credits used (Insights)",
        "Credits all tracked projects used in the selected Insights window.",
        "none",
        [query('sum(circleci_insights_project_credits_used{window="$window"})', instant=True)],
        steps=((None, "blue"),),
    )
    streaks = bar_gauge_panel(
        "Failing streaks",
        "Completed runs in a row that failed, newest first, per project, branch and workflow"
        " (only workflows that are failing now).",
        "none",
        [
            query(
                "sort_desc(circleci_workflow_consecutive_failures > 0)",
                "{{project}} {{branch}} · {{workflow}}",
                instant=True,
            )
        ],
        steps=((None, "orange"), (3, "red")),
    ).no_value("no failing streaks")
    return (
        dashboard.with_row(row("Default branch health"))
        .with_panel(passing)
        .with_panel(failing_count)
        .with_panel(config_errors)
        .with_panel(approvals)
        .with_panel(oldest_approval)
        .with_panel(flaky)
        .with_panel(credits)
        .with_panel(streaks.span(24).height(6))
        .with_panel(_red_branches_table())
    )


def _red_branches_table() -> table.Panel:
    return (
        merged_table_panel(
            "Red default branches",
            "Default-branch workflows whose last completed run failed: since when (the first"
            " failed run of the streak), the streak, and each failing job with its first failed"
            " step. Click a row for the job page, or for the exporter's on-call page with the"
            " step's last log lines.",
            [
                Column(
                    "Red since",
                    _per_failing_job("circleci_workflow_failing_since_timestamp_seconds * 1000"),
                    "dateTimeFromNow",
                ),
                Column(
                    "Streak", _per_failing_job("circleci_workflow_consecutive_failures"), "none"
                ),
            ],
            sort_by="Red since",
            height=8,
        )
        .data_links(
            [
                link("Open job on CircleCI", "${__data.fields.url}"),
                link("Open the exporter's on-call page", "${exporter_url}/"),
            ]
        )
        .override_by_name(*hidden("url"))
        .override_by_name(*_display("job", "failing job"))
        .override_by_name(*_display("step", "failing step"))
        .no_value("no red default branch")
    )


def _display(field: str, name: str) -> tuple[str, list[dashboard_models.DynamicConfigValue]]:
    return field, [dashboard_models.DynamicConfigValue(id_val="displayName", value=name)]


def _activity_row(dashboard: dashboard_builders.Dashboard) -> dashboard_builders.Dashboard:
    throughput = timeseries_panel(
        "Workflow throughput by status",
        "Completed workflow runs per hour, all projects and branches.",
        RUNS_PER_HOUR,
        [
            query(
                "sum by (status) (rate(circleci_workflow_runs_total[$__rate_interval])) * 3600",
                "{{status}}",
            )
        ],
        stacked=True,
    )
    success_rate = (
        timeseries_panel(
            "Workflow success rate by project",
            "Share of completed workflow runs that succeeded (canceled runs excluded).",
            "percentunit",
            [
                query(
                    'sum by (project) (rate(circleci_workflow_runs_total{status="success"}'
                    "[$__rate_interval]))\n/ sum by (project) ("
                    'rate(circleci_workflow_runs_total{status!="canceled"}[$__rate_interval]))',
                    "{{project}}",
                )
            ],
        )
        .min(0)
        .max(1)
    )
    durations = timeseries_panel(
        "Workflow duration p50 / p95 by project",
        "Percentiles of the duration of completed workflow runs (created to stopped).",
        "s",
        [
            query(
                f"histogram_quantile({quantile}, sum by (le, project) "
                "(rate(circleci_workflow_duration_seconds_bucket[$__rate_interval])))",
                f"p{int(quantile * 100)} {{{{project}}}}",
            )
            for quantile in (0.5, 0.95)
        ],
    )
    queue = timeseries_panel(
        "Job queue time p95 by project",
        "95th percentile of the time jobs waited between queued and started.",
        "s",
        [
            query(
                "histogram_quantile(0.95, sum by (le, project) "
                "(rate(circleci_job_queued_seconds_bucket[$__rate_interval])))",
                "{{project}}",
            )
        ],
    )
    in_progress = timeseries_panel(
        "Workflows in progress",
        "Runs now running, failing or on hold, all projects.",
        "none",
        [query("sum by (status) (circleci_workflow_runs_in_progress)", "{{status}}")],
        stacked=True,
    )
    pipelines = timeseries_panel(
        "Pipelines by trigger",
        "Pipelines created per hour, by what triggered them.",
        RUNS_PER_HOUR,
        [
            query(
                "sum by (trigger) (rate(circleci_pipelines_total[$__rate_interval])) * 3600",
                "{{trigger}}",
            )
        ],
        stacked=True,
    )
    return (
        dashboard.with_row(row("Throughput, success and duration"))
        .with_panel(throughput)
        .with_panel(success_rate)
        .with_panel(durations)
        .with_panel(queue)
        .with_panel(in_progress)
        .with_panel(pipelines)
    )


def _insights_row(dashboard: dashboard_builders.Dashboard) -> dashboard_builders.Dashboard:
    credits = bar_gauge_panel(
        "Credits per project (Insights)",
        "Credits each project used in the selected Insights window.",
        "none",
        [
            query(
                "sort_desc(sum by (project) "
                '(circleci_insights_project_credits_used{window="$window"}))',
                "{{project}}",
                instant=True,
            )
        ],
    )
    flaky = bar_gauge_panel(
        "Flaky tests per project (Insights)",
        "Flaky tests CircleCI Insights found in each project.",
        "none",
        [query("sort_desc(circleci_insights_flaky_tests)", "{{project}}", instant=True)],
        steps=((None, "green"), (1, "orange")),
    )
    return dashboard.with_row(row("Insights")).with_panel(credits).with_panel(flaky)


# Gives each (project, schedule) series the schedule's branch and the project's triggers page on
# app.circleci.com (Project Settings → Triggers, derived from the project's url label).
SCHEDULE_LABELS = (
    " * on (project, schedule) group_left (branch, triggers) max by (project, schedule, branch,"
    " triggers) (circleci_schedule_info * on (project) group_left (triggers) max by (project,"
    ' triggers) (label_replace(circleci_project_info, "triggers",'
    ' "https://app.circleci.com/settings/project/$1/triggers", "url",'
    ' "https://app.circleci.com/pipelines/(.+)")))'
)


def _schedules_row(dashboard: dashboard_builders.Dashboard) -> dashboard_builders.Dashboard:
    def per_schedule(expr: str) -> str:
        return f"max by (project, schedule) ({expr}){SCHEDULE_LABELS}"

    status = status_code_expr(
        "circleci_schedule_last_run_status", 'project=~".+"', "project, schedule"
    )
    table = (
        merged_table_panel(
            "Schedules",
            "Every schedule (scheduled-pipeline trigger) of the tracked projects: its branch, the"
            " start of the next hour slot in which its timetable expects a run (UTC), its last"
            " run and that run's status, and the expected runs it missed in the last 7 days (the"
            " panel's own time range)."
            " Click a row to open the project's triggers page on app.circleci.com.",
            [
                Column(
                    "Next run",
                    per_schedule("circleci_schedule_next_run_timestamp_seconds") + " * 1000",
                    "dateTimeAsIso",
                ),
                Column(
                    "Last run",
                    per_schedule("circleci_schedule_last_run_timestamp_seconds") + " * 1000",
                    "dateTimeAsIso",
                ),
                Column("Last status", f"({status}){SCHEDULE_LABELS}", "none"),
                Column(
                    "Missed in 7d",
                    per_schedule("increase(circleci_schedule_missed_runs_total[$__range])"),
                    "none",
                ),
            ],
            sort_by="Missed in 7d",
        )
        .override_by_name(
            "Last status",
            [dashboard_models.DynamicConfigValue(id_val="mappings", value=status_code_mappings())],
        )
        .override_by_name(*hidden("triggers"))
        # The panel always covers the last 7 days, so $__range in "Missed in 7d" is 7 days.
        .time_from("7d")
        .data_links([link("Open the project's triggers", "${__data.fields.triggers}")])
    )
    return dashboard.with_row(row("Scheduled pipelines")).with_panel(table)


def build() -> dashboard_builders.Dashboard:
    dashboard = (
        base_dashboard(
            OVERVIEW_UID,
            "CircleCI / Overview",
            "The health of every tracked CircleCI project: default-branch status, failing streaks,"
            " throughput, success rate, durations, queue time, approvals, flaky tests and credits.",
        )
        .with_variable(
            label_variable(
                "window", "Insights window", "circleci_insights_project_runs", multi=False
            )
        )
        .with_variable(
            # Where the on-call page of the exporter is, as the browser reaches it.
            dashboard_builders.TextBoxVariable("exporter_url")
            .label("Exporter URL")
            .default_value("http://localhost:10027")
        )
    )
    return _schedules_row(_insights_row(_activity_row(_health_row(dashboard))))
