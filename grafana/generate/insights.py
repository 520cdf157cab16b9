"""CircleCI / Insights: what the Insights API reports over its window, per project."""

from grafana_foundation_sdk.builders import dashboard as dashboard_builders

from .common import (
    INSIGHTS_UID,
    Column,
    bar_gauge_panel,
    base_dashboard,
    label_variable,
    merged_table_panel,
    query,
    row,
    stat_panel,
    timeseries_panel,
)

SELECTED = 'project=~"$project", window="$window"'
ORG_SELECTED = 'window="$window"'


def _workflow_stat(metric: str) -> str:
    return f"circleci_insights_workflow_{metric}{{{SELECTED}}}"


def _workflows_row(dashboard: dashboard_builders.Dashboard) -> dashboard_builders.Dashboard:
    summary = merged_table_panel(
        "Workflow summary",
        "Per workflow over the Insights window: runs, success rate, throughput, MTTR, duration"
        " statistics and credits.",
        [
            Column("Runs", _workflow_stat("runs"), "none"),
            Column("Success rate", _workflow_stat("success_rate"), "percentunit"),
            Column("Runs per day", _workflow_stat("throughput_per_day"), "none"),
            Column("MTTR", _workflow_stat("mttr_seconds"), "s"),
            Column(
                "Median duration",
                f'circleci_insights_workflow_duration_seconds{{{SELECTED}, stat="median"}}',
                "s",
            ),
            Column(
                "p95 duration",
                f'circleci_insights_workflow_duration_seconds{{{SELECTED}, stat="p95"}}',
                "s",
            ),
            Column("Credits", _workflow_stat("credits_used"), "none"),
        ],
        sort_by="Runs",
        height=9,
    )
    success = (
        timeseries_panel(
            "Success rate",
            "Insights success rate per workflow, as refreshed over time.",
            "percentunit",
            [query(_workflow_stat("success_rate"), "{{project}} {{branch}} · {{workflow}}")],
        )
        .min(0)
        .max(1)
    )
    mttr = timeseries_panel(
        "Mean time to recovery",
        "Insights MTTR per workflow; absent when the window had no failures.",
        "s",
        [query(_workflow_stat("mttr_seconds"), "{{project}} {{branch}} · {{workflow}}")],
    )
    durations = timeseries_panel(
        "Duration median / p95",
        "Insights duration statistics per workflow.",
        "s",
        [
            query(
                f'circleci_insights_workflow_duration_seconds{{{SELECTED}, stat="{stat}"}}',
                f"{stat} {{{{project}}}} · {{{{workflow}}}}",
            )
            for stat in ("median", "p95")
        ],
    )
    credits = timeseries_panel(
        "Credits used",
        "Credits per workflow over the Insights window.",
        "none",
        [query(_workflow_stat("credits_used"), "{{project}} {{branch}} · {{workflow}}")],
    )
    trends = bar_gauge_panel(
        "Trends vs the prior window",
        "Change of each workflow-summary metric against the prior period (0% = no change).",
        "percentunit",
        [
            query(
                'circleci_insights_workflow_trend{project=~"$project"} - 1',
                "{{project}} · {{workflow}} {{metric}}",
                instant=True,
            )
        ],
        steps=((None, "blue"),),
    )
    return (
        dashboard.with_row(row("Workflows"))
        .with_panel(summary)
        .with_panel(success)
        .with_panel(mttr)
        .with_panel(durations)
        .with_panel(credits)
        .with_panel(trends.span(24))
    )


def _tests_row(dashboard: dashboard_builders.Dashboard) -> dashboard_builders.Dashboard:
    test_columns = 'project=~"$project"'
    flaky_count = bar_gauge_panel(
        "Flaky tests per project",
        "Total flaky tests Insights reports per project.",
        "none",
        [query(f"circleci_insights_flaky_tests{{{test_columns}}}", "{{project}}", instant=True)],
        steps=((None, "green"), (1, "orange")),
        span=24,
        height=5,
    )
    flaky = merged_table_panel(
        "Flaky tests",
        "The flakiest tests and how many times each flaked.",
        [
            Column(
                "Times flaked",
                f"circleci_insights_flaky_test_times_flaked{{{test_columns}}}",
                "none",
            )
        ],
        sort_by="Times flaked",
        span=8,
        height=10,
    )
    failed = merged_table_panel(
        "Most failed tests",
        "Tests that failed most often in the recent runs Insights looked at.",
        [
            Column(
                "Failed runs",
                f"circleci_insights_test_failed_runs{{{test_columns}}}",
                "none",
            )
        ],
        sort_by="Failed runs",
        span=8,
        height=10,
    )
    slowest = merged_table_panel(
        "Slowest tests",
        "Tests with the highest p95 duration.",
        [
            Column(
                "p95 duration",
                f"circleci_insights_test_p95_duration_seconds{{{test_columns}}}",
                "s",
            )
        ],
        sort_by="p95 duration",
        span=8,
        height=10,
    )
    return (
        dashboard.with_row(row("Tests"))
        .with_panel(flaky_count)
        .with_panel(flaky)
        .with_panel(failed)
        .with_panel(slowest)
    )


def _jobs_row(dashboard: dashboard_builders.Dashboard) -> dashboard_builders.Dashboard:
    jobs = merged_table_panel(
        "Job summary",
        "Per job over the Insights window: runs, success rate, p95 duration and credits.",
        [
            Column("Runs", f"circleci_insights_job_runs{{{SELECTED}}}", "none"),
            Column(
                "Success rate", f"circleci_insights_job_success_rate{{{SELECTED}}}", "percentunit"
            ),
            Column(
                "p95 duration",
                f'circleci_insights_job_duration_seconds{{{SELECTED}, stat="p95"}}',
                "s",
            ),
            Column("Credits", f"circleci_insights_job_credits_used{{{SELECTED}}}", "none"),
        ],
        sort_by="Credits",
        height=9,
    )
    return dashboard.with_row(row("Jobs")).with_panel(jobs)


def _organization_row(dashboard: dashboard_builders.Dashboard) -> dashboard_builders.Dashboard:
    org_stats = [
        stat_panel(
            title, description, unit, [query(f"sum({metric}{{{ORG_SELECTED}}})", instant=True)]
        )
        for title, description, metric, unit in (
            (
                "Org runs",
                "Workflow runs across the organisation.",
                "circleci_insights_org_runs",
                "none",
            ),
            (
                "Org runs per day",
                "Workflow throughput across the organisation.",
                "circleci_insights_org_throughput_per_day",
                "none",
            ),
            (
                "Org credits",
                "Credits the organisation used.",
                "circleci_insights_org_credits_used",
                "none",
            ),
            (
                "Org total duration",
                "Summed duration of all workflow runs.",
                "circleci_insights_org_runtime_seconds",
                "s",
            ),
        )
    ]
    org_success = stat_panel(
        "Org success rate",
        "Share of successful workflow runs across the organisation.",
        "percentunit",
        [query(f"avg(circleci_insights_org_success_rate{{{ORG_SELECTED}}})", instant=True)],
        steps=((None, "red"), (0.8, "orange"), (0.95, "green")),
    )
    per_project = merged_table_panel(
        "Org summary per project",
        "The per-project rows of the organisation summary.",
        [
            Column("Runs", f"circleci_insights_project_runs{{{ORG_SELECTED}}}", "none"),
            Column(
                "Success rate",
                f"circleci_insights_project_success_rate{{{ORG_SELECTED}}}",
                "percentunit",
            ),
            Column("Credits", f"circleci_insights_project_credits_used{{{ORG_SELECTED}}}", "none"),
            Column(
                "Total duration",
                f"circleci_insights_project_runtime_seconds{{{ORG_SELECTED}}}",
                "s",
            ),
        ],
        sort_by="Credits",
    )
    dashboard = dashboard.with_row(row("Organisation"))
    for panel in org_stats[:2]:
        dashboard = dashboard.with_panel(panel.span(5))
    dashboard = dashboard.with_panel(org_success)
    for panel in org_stats[2:]:
        dashboard = dashboard.with_panel(panel.span(5))
    return dashboard.with_panel(per_project)


def build() -> dashboard_builders.Dashboard:
    dashboard = (
        base_dashboard(
            INSIGHTS_UID,
            "CircleCI / Insights",
            "CircleCI Insights per project: success rate, durations, MTTR, credits and trends;"
            " flaky, most failed and slowest tests; the organisation summary. Insights data is"
            " refreshed slowly and covers the selected window, not the dashboard time range.",
        )
        .with_variable(
            label_variable("project", "Project", "circleci_insights_workflow_runs", multi=True)
        )
        .with_variable(
            label_variable("window", "Window", "circleci_insights_workflow_runs", multi=False)
        )
    )
    return _organization_row(_jobs_row(_tests_row(_workflows_row(dashboard))))
