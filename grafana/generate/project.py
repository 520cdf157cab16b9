"""CircleCI / Project: one project's workflows, jobs, last runs and test results."""

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.models import dashboard as dashboard_models

from .common import (
    PROJECT_UID,
    RUNS_PER_HOUR,
    Column,
    bar_gauge_panel,
    base_dashboard,
    heatmap_panel,
    hidden,
    label_variable,
    labels_table_panel,
    link,
    merged_table_panel,
    query,
    row,
    state_timeline_panel,
    status_code_expr,
    status_text_mappings,
    timeseries_panel,
)

SELECTED = 'project="$project", branch=~"$branch", workflow=~"$workflow"'
JOB_FAILED = 'status=~"failed|infrastructure_fail|timedout"'


def _variables(dashboard: dashboard_builders.Dashboard) -> dashboard_builders.Dashboard:
    return (
        dashboard.with_variable(
            label_variable("project", "Project", "circleci_project_info", multi=False)
        )
        .with_variable(
            label_variable(
                "branch", "Branch", 'circleci_workflow_status{project="$project"}', multi=True
            )
        )
        .with_variable(
            label_variable(
                "workflow",
                "Workflow",
                'circleci_workflow_status{project="$project", branch=~"$branch"}',
                multi=True,
            )
        )
    )


def _status_cells(panel_field: str) -> tuple[str, list[dashboard_models.DynamicConfigValue]]:
    return panel_field, [
        dashboard_models.DynamicConfigValue(id_val="mappings", value=status_text_mappings()),
        dashboard_models.DynamicConfigValue(
            id_val="custom.cellOptions", value={"type": "color-text"}
        ),
    ]


def _workflows_row(dashboard: dashboard_builders.Dashboard) -> dashboard_builders.Dashboard:
    timeline = state_timeline_panel(
        "Workflow status",
        "Status of the most recent run of each workflow over time.",
        [
            query(
                status_code_expr("circleci_workflow_status", SELECTED, "branch, workflow"),
                "{{branch}} · {{workflow}}",
            )
        ],
    )
    runs = timeseries_panel(
        "Workflow runs by status",
        "Completed runs per hour of the selected workflows.",
        RUNS_PER_HOUR,
        [
            query(
                f"sum by (workflow, status) (rate(circleci_workflow_runs_total{{{SELECTED}}}"
                "[$__rate_interval])) * 3600",
                "{{workflow}} {{status}}",
            )
        ],
        stacked=True,
    )
    heatmap = heatmap_panel(
        "Workflow duration distribution",
        "Completed runs per duration bucket (created to stopped) of the selected workflows.",
        f"sum by (le) (increase(circleci_workflow_duration_seconds_bucket{{{SELECTED}}}"
        "[$__rate_interval]))",
    )
    percentiles = timeseries_panel(
        "Workflow duration p50 / p95",
        "Percentiles of the duration of completed runs, per workflow.",
        "s",
        [
            query(
                f"histogram_quantile({quantile}, sum by (le, workflow) "
                f"(rate(circleci_workflow_duration_seconds_bucket{{{SELECTED}}}[$__rate_interval])))",
                f"p{int(quantile * 100)} {{{{workflow}}}}",
            )
            for quantile in (0.5, 0.95)
        ],
    )
    streaks = bar_gauge_panel(
        "Consecutive failures",
        "Completed runs in a row that failed or errored, newest first; 0 after a success.",
        "none",
        [
            query(
                f"max by (branch, workflow) (circleci_workflow_consecutive_failures{{{SELECTED}}})",
                "{{branch}} · {{workflow}}",
                instant=True,
            )
        ],
        steps=((None, "green"), (1, "orange"), (3, "red")),
        span=6,
    )
    last_duration = bar_gauge_panel(
        "Last completed duration",
        "Duration of the most recent completed run of each workflow.",
        "s",
        [
            query(
                "max by (branch, workflow) "
                f"(circleci_workflow_last_completed_duration_seconds{{{SELECTED}}})",
                "{{branch}} · {{workflow}}",
                instant=True,
            )
        ],
        span=6,
    )
    last_runs = (
        labels_table_panel(
            "Last workflow runs",
            "The most recent run of each workflow; click a row to open it on app.circleci.com.",
            f"circleci_workflow_last_run_info{{{SELECTED}}}",
            drop=("project", "workflow_id"),
            height=7,
        )
        .data_links([link("Open workflow on CircleCI", "${__data.fields.url}")])
        .override_by_name(*hidden("url"))
        .override_by_name(*_status_cells("status"))
    )
    return (
        dashboard.with_row(row("Workflows"))
        .with_panel(timeline)
        .with_panel(runs)
        .with_panel(percentiles)
        .with_panel(heatmap)
        .with_panel(streaks)
        .with_panel(last_duration)
        .with_panel(last_runs)
    )


def _jobs_row(dashboard: dashboard_builders.Dashboard) -> dashboard_builders.Dashboard:
    breakdown = merged_table_panel(
        "Job breakdown",
        "Per job over the time range: runs, failures, p95 duration and p95 queue time; and the"
        " duration of the last completed run.",
        [
            Column(
                "Runs",
                "sum by (workflow, job) "
                f"(increase(circleci_job_runs_total{{{SELECTED}}}[$__range]))",
                "none",
            ),
            Column(
                "Failures",
                "sum by (workflow, job) (increase(circleci_job_runs_total"
                f"{{{SELECTED}, {JOB_FAILED}}}[$__range]))",
                "none",
            ),
            Column(
                "p95 duration",
                "histogram_quantile(0.95, sum by (le, workflow, job) "
                f"(increase(circleci_job_duration_seconds_bucket{{{SELECTED}}}[$__range])))",
                "s",
            ),
            Column(
                "p95 queue time",
                "histogram_quantile(0.95, sum by (le, workflow, job) "
                f"(increase(circleci_job_queued_seconds_bucket{{{SELECTED}}}[$__range])))",
                "s",
            ),
            Column(
                "Last duration",
                "max by (workflow, job) "
                f"(circleci_job_last_completed_duration_seconds{{{SELECTED}}})",
                "s",
            ),
        ],
        sort_by="p95 duration",
    )
    durations = timeseries_panel(
        "Job duration p95",
        "95th percentile of completed job durations (started to stopped), per job.",
        "s",
        [
            query(
                "histogram_quantile(0.95, sum by (le, job) "
                f"(rate(circleci_job_duration_seconds_bucket{{{SELECTED}}}[$__rate_interval])))",
                "{{job}}",
            )
        ],
    )
    queue = timeseries_panel(
        "Job queue time p95",
        "95th percentile of the time jobs waited between queued and started, per job.",
        "s",
        [
            query(
                "histogram_quantile(0.95, sum by (le, job) "
                f"(rate(circleci_job_queued_seconds_bucket{{{SELECTED}}}[$__rate_interval])))",
                "{{job}}",
            )
        ],
    )
    failures = timeseries_panel(
        "Job failures",
        "Failed job runs per hour (failed, infrastructure_fail, timedout), per job.",
        RUNS_PER_HOUR,
        [
            query(
                "sum by (job) (rate(circleci_job_runs_total"
                f"{{{SELECTED}, {JOB_FAILED}}}[$__rate_interval])) * 3600",
                "{{job}}",
            )
        ],
        stacked=True,
    )
    last_jobs = (
        labels_table_panel(
            "Last job runs",
            "The most recent run of each job, with the first failed step when that run failed;"
            " click a row to open it on app.circleci.com.",
            # The step belongs to one run: joined on its job page url.
            f"(circleci_job_last_run_info{{{SELECTED}}} * on (url) group_left (failed_step)"
            " label_replace(circleci_job_last_failed_step_info{"
            f'{SELECTED}}}, "failed_step", "$1", "step", "(.*)"))'
            f" or on (url) circleci_job_last_run_info{{{SELECTED}}}",
            drop=("project",),
        )
        .data_links([link("Open job on CircleCI", "${__data.fields.url}")])
        .override_by_name(*hidden("url"))
        .override_by_name(
            "failed_step",
            [dashboard_models.DynamicConfigValue(id_val="displayName", value="failed step")],
        )
        .override_by_name(*_status_cells("status"))
    )
    tests = bar_gauge_panel(
        "Test results of the last runs",
        "Tests of the most recent completed run of each job that reported tests, by result.",
        "none",
        [
            query(
                f"sum by (workflow, job, result) (circleci_job_last_tests{{{SELECTED}}})",
                "{{workflow}} · {{job}} {{result}}",
                instant=True,
            )
        ],
    ).override_by_regexp(
        ".* failure$",
        [
            dashboard_models.DynamicConfigValue(
                id_val="color", value={"mode": "fixed", "fixedColor": "red"}
            )
        ],
    )
    return (
        dashboard.with_row(row("Jobs"))
        .with_panel(breakdown)
        .with_panel(durations)
        .with_panel(queue)
        .with_panel(failures)
        .with_panel(tests)
        .with_panel(last_jobs)
    )


def build() -> dashboard_builders.Dashboard:
    dashboard = base_dashboard(
        PROJECT_UID,
        "CircleCI / Project",
        "One project: workflow status over time, duration heatmaps and percentiles, a job"
        " breakdown, the last runs with links to app.circleci.com, and the last test results.",
    )
    return _jobs_row(_workflows_row(_variables(dashboard)))
