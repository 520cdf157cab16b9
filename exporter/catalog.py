"""Every metric family the exporter exposes: the one list that the exposition, docs/metrics.md
and the tests read, so the three never drift. This list is the project's metric contract: add
families freely (each with its help text), change none silently."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["gauge", "counter", "histogram", "stateset", "info"]
Source = Literal["live", "insights", "schedules", "exporter"]


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    kind: Kind
    labels: tuple[str, ...]
    help: str
    source: Source

    @property
    def prometheus_type(self) -> str:
        """The exposition TYPE: state sets and info metrics are gauges in the text format."""
        return "gauge" if self.kind in ("stateset", "info") else self.kind


_PROJECT_LABELS = ("project",)
_BRANCH_LABELS = ("project", "branch")
_WORKFLOW_LABELS = ("project", "branch", "workflow")
_JOB_LABELS = ("project", "branch", "workflow", "job")
_LIVE = "(live: polling and webhooks)"

LIVE = (
    Family("circleci_project_info", "info", ("project", "organization", "name", "url"),
           f"One series per tracked project; url is its page on app.circleci.com {_LIVE}.", "live"),
    Family("circleci_project_default_branch_info", "info", _BRANCH_LABELS,
           f"The project's default branch, for joins on(project, branch) {_LIVE}.", "live"),
    Family("circleci_pipelines_total", "counter", (*_BRANCH_LABELS, "trigger"),
           f"Pipelines created while the exporter watched, by trigger type {_LIVE}.", "live"),
    Family("circleci_pipeline_errors_total", "counter", (*_BRANCH_LABELS, "type"),
           f"Errored pipelines (e.g. config errors), by error type {_LIVE}.", "live"),
    Family("circleci_workflow_runs_total", "counter", (*_WORKFLOW_LABELS, "status"),
           f"Completed workflow runs, by terminal status, each counted once {_LIVE}.", "live"),
    Family("circleci_workflow_duration_seconds", "histogram", (*_WORKFLOW_LABELS, "status"),
           f"stopped_at - created_at of completed workflow runs {_LIVE}.", "live"),
    Family("circleci_workflow_status", "stateset", (*_WORKFLOW_LABELS, "status"),
           f"1 for the status of the most recent run, 0 for the others {_LIVE}.", "live"),
    Family("circleci_workflow_last_completed_status", "stateset", (*_WORKFLOW_LABELS, "status"),
           f"1 for the terminal status of the most recent completed run {_LIVE}.", "live"),
    Family("circleci_workflow_last_completed_timestamp_seconds", "gauge", _WORKFLOW_LABELS,
           f"stopped_at of the most recent completed run {_LIVE}.", "live"),
    Family("circleci_workflow_last_completed_duration_seconds", "gauge", _WORKFLOW_LABELS,
           f"Duration of the most recent completed run {_LIVE}.", "live"),
    Family("circleci_workflow_consecutive_failures", "gauge", _WORKFLOW_LABELS,
           f"Completed runs in a row, newest first, that failed or errored {_LIVE}.", "live"),
    Family("circleci_workflow_runs_in_progress", "gauge", (*_WORKFLOW_LABELS, "status"),
           f"Runs now running, failing or on_hold {_LIVE}.", "live"),
    Family("circleci_workflow_on_hold_since_timestamp_seconds", "gauge", _WORKFLOW_LABELS,
           f"created_at of the oldest run waiting on an approval {_LIVE}.", "live"),
    Family("circleci_workflow_last_run_info", "info",
           (*_WORKFLOW_LABELS, "pipeline_number", "workflow_id", "status", "url"),
           f"The most recent run; url is its workflow page on app.circleci.com {_LIVE}.", "live"),
    Family("circleci_job_runs_total", "counter", (*_JOB_LABELS, "status"),
           f"Completed jobs (approvals excluded), by terminal status {_LIVE}.", "live"),
    Family("circleci_job_duration_seconds", "histogram", (*_JOB_LABELS, "status"),
           f"stopped_at - started_at of completed jobs {_LIVE}.", "live"),
    Family("circleci_job_queued_seconds", "histogram", _JOB_LABELS,
           f"started_at - queued_at of completed jobs, from the job details {_LIVE}.", "live"),
    Family("circleci_job_last_completed_status", "stateset", (*_JOB_LABELS, "status"),
           f"1 for the terminal status of the most recent completed job run {_LIVE}.", "live"),
    Family("circleci_job_last_completed_duration_seconds", "gauge", _JOB_LABELS,
           f"Duration of the most recent completed job run {_LIVE}.", "live"),
    Family("circleci_job_last_tests", "gauge", (*_JOB_LABELS, "result"),
           "Test results of the most recent completed run that reported tests; result is "
           f"success, failure, skipped or other {_LIVE}.", "live"),
    Family("circleci_job_last_run_info", "info", (*_JOB_LABELS, "job_number", "status", "url"),
           f"The most recent job run; url is its job page on app.circleci.com {_LIVE}.", "live"),
    # On-call depth (issue 16): present while the job's last completed run is a failure.
    Family("circleci_job_last_failed_step_info", "info", (*_JOB_LABELS, "step", "url"),
           "First failed step of the job's last completed run while that run failed; step is "
           "empty when API v1.1 cannot tell; url is the job page "
           f"{_LIVE}.", "live"),
    Family("circleci_workflow_failing_since_timestamp_seconds", "gauge", _WORKFLOW_LABELS,
           "stopped_at of the first failed run of the current failure streak; absent when the "
           f"last completed run did not fail {_LIVE}.", "live"),
)  # fmt: skip

_WINDOW_LABEL = ("window",)
_INSIGHTS_WINDOW = "(Insights API; window label = reporting window)"
_LAST_10_RUNS = "(Insights API, last 10 runs)"
_INSIGHTS = "(Insights API)"


def _run_families(level: str, labels: tuple[str, ...], what: str) -> tuple[Family, ...]:
    """The run counts Insights gives for both workflows and jobs."""
    prefix = f"circleci_insights_{level}"
    return (
        Family(f"{prefix}_runs", "gauge", labels,
               f"Runs of the {what} {_INSIGHTS_WINDOW}.", "insights"),
        Family(f"{prefix}_successful_runs", "gauge", labels,
               f"Successful runs of the {what} {_INSIGHTS_WINDOW}.", "insights"),
        Family(f"{prefix}_failed_runs", "gauge", labels,
               f"Failed runs of the {what} {_INSIGHTS_WINDOW}.", "insights"),
        Family(f"{prefix}_success_rate", "gauge", labels,
               f"Successful / (all - cancelled) runs of the {what}, 0..1 {_INSIGHTS_WINDOW}.",
               "insights"),
        Family(f"{prefix}_throughput_per_day", "gauge", labels,
               f"Runs per day of the {what} {_INSIGHTS_WINDOW}.", "insights"),
        Family(f"{prefix}_credits_used", "gauge", labels,
               f"Credits used by the {what}, not billing-grade {_INSIGHTS_WINDOW}.", "insights"),
        Family(f"{prefix}_duration_seconds", "gauge", (*labels, "stat"),
               f"Run duration statistics of the {what} (min, mean, median, p95, max, stddev) "
               f"{_INSIGHTS_WINDOW}.", "insights"),
    )  # fmt: skip


INSIGHTS = (
    *_run_families("workflow", (*_WORKFLOW_LABELS, *_WINDOW_LABEL), "workflow"),
    Family("circleci_insights_workflow_mttr_seconds", "gauge", (*_WORKFLOW_LABELS, *_WINDOW_LABEL),
           f"Mean time to recovery of the workflow; absent without failures {_INSIGHTS_WINDOW}.",
           "insights"),
    Family("circleci_insights_workflow_trend", "gauge", (*_WORKFLOW_LABELS, "metric"),
           "Ratio current/prior of a workflow summary metric, 1 = no change, -1 = infinite "
           "(Insights API, workflow summary window).", "insights"),
    *_run_families("job", (*_JOB_LABELS, *_WINDOW_LABEL), "job in the workflow"),
    Family("circleci_insights_flaky_tests", "gauge", _PROJECT_LABELS,
           f"Flaky tests of the project (passed and failed in the same commit) {_INSIGHTS}.",
           "insights"),
    Family("circleci_insights_flaky_test_times_flaked", "gauge",
           ("project", "workflow", "job", "test", "classname"),
           f"Times each of the project's top flaky tests flaked {_INSIGHTS}.", "insights"),
    Family("circleci_insights_test_runs", "gauge", _WORKFLOW_LABELS,
           f"Test runs of the workflow {_LAST_10_RUNS}.", "insights"),
    Family("circleci_insights_test_failed_runs", "gauge", (*_JOB_LABELS, "test", "classname"),
           f"Failed runs of the workflow's most failed tests, top N {_LAST_10_RUNS}.", "insights"),
    Family("circleci_insights_test_p95_duration_seconds", "gauge",
           (*_JOB_LABELS, "test", "classname"),
           f"p95 duration of the workflow's slowest tests, top N {_LAST_10_RUNS}.", "insights"),
    Family("circleci_insights_org_runs", "gauge", ("org", *_WINDOW_LABEL),
           f"Workflow runs in the org {_INSIGHTS_WINDOW}.", "insights"),
    Family("circleci_insights_org_success_rate", "gauge", ("org", *_WINDOW_LABEL),
           f"Success rate of the org's workflow runs, 0..1 {_INSIGHTS_WINDOW}.", "insights"),
    Family("circleci_insights_org_throughput_per_day", "gauge", ("org", *_WINDOW_LABEL),
           f"Workflow runs per day in the org {_INSIGHTS_WINDOW}.", "insights"),
    Family("circleci_insights_org_credits_used", "gauge", ("org", *_WINDOW_LABEL),
           f"Credits used by the org, not billing-grade {_INSIGHTS_WINDOW}.", "insights"),
    Family("circleci_insights_org_runtime_seconds", "gauge", ("org", *_WINDOW_LABEL),
           f"Summed duration of the org's workflow runs {_INSIGHTS_WINDOW}.", "insights"),
    Family("circleci_insights_project_runs", "gauge", ("org", "project", *_WINDOW_LABEL),
           f"Workflow runs of the project, from the org summary {_INSIGHTS_WINDOW}.", "insights"),
    Family("circleci_insights_project_success_rate", "gauge", ("org", "project", *_WINDOW_LABEL),
           "Success rate of the project's workflow runs, 0..1, from the org summary "
           f"{_INSIGHTS_WINDOW}.",
           "insights"),
    Family("circleci_insights_project_credits_used", "gauge", ("org", "project", *_WINDOW_LABEL),
           f"Credits used by the project, from the org summary {_INSIGHTS_WINDOW}.", "insights"),
    Family("circleci_insights_project_runtime_seconds", "gauge", ("org", "project", *_WINDOW_LABEL),
           "Summed duration of the project's workflow runs, from the org summary "
           f"{_INSIGHTS_WINDOW}.",
           "insights"),
    Family("circleci_insights_branches", "gauge", _PROJECT_LABELS,
           f"Branches Insights knows for the project (at most 5000) {_INSIGHTS}.", "insights"),
)  # fmt: skip

_PS = ("project", "schedule")
_S = "(schedules: read every collect.schedules_interval, runs from the live collector)"

SCHEDULES = (
    Family("circleci_schedule_info", "info", (*_PS, "branch", "actor"),
           f"One series per schedule: the branch (or tag) it runs on and the login its pipelines "
           f"are attributed to {_S}.", "schedules"),
    Family("circleci_schedule_next_run_timestamp_seconds", "gauge", _PS,
           f"Start of the next hour slot in which the timetable expects a run (UTC) {_S}.",
           "schedules"),
    Family("circleci_schedule_last_run_timestamp_seconds", "gauge", _PS,
           f"created_at of the newest pipeline attributed to the schedule {_S}.", "schedules"),
    Family("circleci_schedule_last_run_status", "stateset", (*_PS, "status"),
           f"Outcome of the newest attributed pipeline's workflows: success, failed, error, "
           f"canceled or running; absent for a run on an untracked branch until a "
           f"workflow-completed webhook reports it {_S}.", "schedules"),
    Family("circleci_schedule_missed_runs_total", "counter", _PS,
           f"Expected runs (timetable slots) that passed collect.schedule_grace with no "
           f"pipeline, while the exporter watched {_S}.", "schedules"),
    Family("circleci_schedule_last_missed_run_timestamp_seconds", "gauge", _PS,
           f"Start of the newest slot counted in circleci_schedule_missed_runs_total {_S}.",
           "schedules"),
)  # fmt: skip

EXPORTER = (
    Family("circleci_exporter_build_info", "info", ("version", "python_version"),
           "The exporter's version.", "exporter"),
    Family("circleci_up", "gauge", _PROJECT_LABELS,
           "1 when the last live collection of the project succeeded, else 0.", "exporter"),
    Family("circleci_exporter_last_success_timestamp_seconds", "gauge", ("project", "collector"),
           "Time of the last successful collection per project and collector.", "exporter"),
    Family("circleci_exporter_collect_errors_total", "counter", ("project", "collector"),
           "Failed collections per project and collector.", "exporter"),
    Family("circleci_exporter_collect_interval_seconds", "gauge", ("collector",),
           "The configured interval of each collector.", "exporter"),
    Family("circleci_exporter_series", "gauge", (),
           "Series in the last snapshot of the CircleCI data.", "exporter"),
    Family("circleci_exporter_snapshot_timestamp_seconds", "gauge", (),
           "When the metrics served were last rebuilt from the state.", "exporter"),
    # backfill (issue 18): where a backfill from Insights must stop.
    Family("circleci_exporter_watch_start_timestamp_seconds", "gauge", (),
           "When the exporter began watching: counters count runs completed from then on, "
           "and a backfill ends just before it.", "exporter"),
)  # fmt: skip

# Families kept in the process registry (prometheus_client metrics of the API client, the
# collectors and the webhook receiver), updated as things happen.
PROCESS = (
    Family("circleci_exporter_api_requests_total", "counter", ("endpoint", "code"),
           "CircleCI API request attempts, retries included, by operation and HTTP status (or "
           "error).", "exporter"),
    Family("circleci_exporter_api_request_duration_seconds", "histogram", ("endpoint",),
           "Duration of CircleCI API request attempts, by operation.", "exporter"),
    Family("circleci_exporter_api_retries_total", "counter", ("endpoint", "reason"),
           "CircleCI API requests retried, by operation and reason (429, 5xx, timeout, "
           "connection).", "exporter"),
    Family("circleci_exporter_collect_duration_seconds", "histogram", ("collector",),
           "Duration of one collection cycle of one project.", "exporter"),
    Family("circleci_exporter_webhook_events_total", "counter", ("event", "outcome"),
           "Webhook deliveries received, by event type and outcome (applied, duplicate, "
           "invalid_signature, malformed, ignored, too_large, timeout, overloaded, other_shard: "
           "a project another shard owns).",
           "exporter"),
    Family("circleci_exporter_webhook_dedupe_bytes", "gauge", (),
           "Bytes of event ids held for deduplication, at most webhooks.dedupe_max_bytes.",
           "exporter"),
    # Limits against a hostile or broken peer (docs/operations.md).
    Family("circleci_exporter_api_page_limit_hits_total", "counter", ("endpoint",),
           "Paginated reads stopped at api.max_pages, by operation.", "exporter"),
    Family("circleci_exporter_forgotten_total", "counter", ("kind",),
           "Tracked pipelines, workflows and jobs CircleCI answered 404 for, settled and "
           "forgotten.", "exporter"),
    Family("circleci_exporter_series_limit_hits_total", "counter", ("project",),
           "Updates dropped because their project reached collect.max_series_per_project.",
           "exporter"),
    Family("circleci_exporter_render_errors_total", "counter", (),
           "Failed renders of /metrics; the last good one is served meanwhile.", "exporter"),
    # render on change (issue 19): what the publisher did each time it was asked.
    Family("circleci_exporter_publishes_total", "counter", ("outcome",),
           "Publishes of the metrics after a collection, a sweep or a webhook, by outcome: "
           "rendered (something changed), unchanged (nothing did: no snapshot, no render), "
           "deferred (only times of successful collections moved, rendered at most once per "
           "live interval).",
           "exporter"),
    Family("circleci_exporter_render_parts_total", "counter", ("outcome",),
           "Parts of the metrics (a project's series, its Insights, an org's, its schedules) "
           "per render, by outcome: rendered (changed since the last render) or reused.",
           "exporter"),
    Family("circleci_exporter_rate_limited_until_timestamp_seconds", "gauge", ("reason",),
           "Until when every CircleCI request is held back, by reason (429, "
           "circuit_breaker); in the past when none is.", "exporter"),
    Family("circleci_exporter_step_log_cache_evictions_total", "counter", ("reason",),
           "Step logs dropped from the log tail cache: reason entries or bytes (web.log_cache_*"
           " reached), or too_large (a log bigger than the whole cache, served but not kept).",
           "exporter"),
    # The web config file (--web.config.file, exporter.web.security).
    Family("circleci_exporter_web_auth_failures_total", "counter", ("listener",),
           "Requests refused for missing or wrong basic-auth credentials, by listener "
           "(metrics, webhooks).", "exporter"),
    Family("circleci_exporter_web_config_last_reload_successful", "gauge", (),
           "1 when the web config file in force is the one on disk, 0 when its last change "
           "was refused and the previous version still applies.", "exporter"),
    # layers (issue 11): stale-series expiry is a periodic task of its own.
    Family("circleci_exporter_stale_series_removed_total", "counter", ("kind",),
           "Series removed because nothing was seen of them for collect.series_ttl, by kind "
           "(workflow, job, branch).", "exporter"),
    # shard (issue 15): sharding across replicas (docs/architecture.md §Sharding).
    Family("circleci_exporter_shard_info", "info", ("shard", "total_shards"),
           "This replica's shard and the number of shards (--shard, --total-shards); shard 0 "
           "of 1 when unsharded.", "exporter"),
    Family("circleci_exporter_shard_projects", "gauge", (),
           "Projects this replica tracks: those of projects: and orgs: that its shard owns.",
           "exporter"),
)  # fmt: skip

# The org change feed (issue 15, collect/feed.py); process registry too.
ORG_FEED = (
    Family("circleci_project_in_org_feed", "gauge", _PROJECT_LABELS,
           "0 when the project's own pipeline list showed pipelines its org's pipeline feed "
           "should have listed and did not (the token's user does not follow it): its list is "
           "then read every cycle. 1 otherwise. Only with collect.org_feed.", "exporter"),
    Family("circleci_exporter_org_feed_overflows_total", "counter", ("org", "reason"),
           "Org feed reads that could not reach a pipeline read before: reason pages "
           "(collect.org_feed_max_pages reached) or window (as many projects built as the feed "
           "shows, 250). Every tracked project of the org then reads its own list once.",
           "exporter"),
)  # fmt: skip

ALL = LIVE + INSIGHTS + SCHEDULES + EXPORTER + PROCESS + ORG_FEED
BY_NAME = {f.name: f for f in ALL}
