"""Typed, lenient models of the CircleCI API responses the exporter reads.

Leniency rules, all from docs/circleci-api.md (§Sources, §Live departures):
- Unknown keys are ignored; status, type and state fields are plain `str`, because the live API
  sends values outside the spec's enums (e.g. trigger type `unknown`).
- Every field accepts both snake_case and kebab-case keys: the spec documents kebab-case for flaky
  tests, collaborations, schedules and webhooks, while the live API answers snake_case for some.
- A key sent as `null` counts as absent, so optional fields and lists fall back to their defaults.
- Timestamps with or without milliseconds become timezone-aware UTC datetimes; one more than
  `FUTURE_SKEW` ahead of this machine's clock is clamped to that.
- Lone UTF-16 surrogates in any text become U+FFFD (`clean_text`).
- Only what identifies an object (ids, names, numbers, status, creation time) is required.

Every response passes through here, so validation is kept cheap (bench/cpu.py): list and dict
defaults are factories (pydantic deep-copies a mutable default each time it is used), and the
API client tells the models when the text is already clean (`TEXT_IS_CLEAN`).
"""

import json
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

ReportingWindow = Literal[
    "last-24-hours", "last-7-days", "last-30-days", "last-60-days", "last-90-days"
]


# How far ahead of this machine's clock a timestamp may be: clock skew between CircleCI and
# here. Anything later (a run "stopped" in the year 9999) would keep its series from ever
# expiring, so it is clamped to now plus this.
FUTURE_SKEW = timedelta(hours=1)


def _utc_not_far_future(value: datetime) -> datetime:
    """`value` in UTC (naive means UTC), at most `FUTURE_SKEW` ahead of now. One function, on
    time.time(), because every page validates dozens of timestamps."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if value.timestamp() > time.time() + _FUTURE_SKEW_SECONDS:
        return datetime.now(UTC) + FUTURE_SKEW
    return value


_FUTURE_SKEW_SECONDS = FUTURE_SKEW.total_seconds()
Timestamp = Annotated[datetime, AfterValidator(_utc_not_far_future)]


def _snake_or_kebab(field_name: str) -> AliasChoices:
    return AliasChoices(field_name, field_name.replace("_", "-"))


class ApiModel(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        alias_generator=AliasGenerator(validation_alias=_snake_or_kebab),
    )

    @model_validator(mode="before")
    @classmethod
    def _null_means_absent(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        if info.context is not None and info.context.get(TEXT_IS_CLEAN):
            # The fast path of the API client (every response): nothing to clean, and most
            # objects have no null to drop.
            if None not in data.values():
                return data
            return {key: value for key, value in data.items() if value is not None}
        return {key: clean_text(value) for key, value in data.items() if value is not None}


# Validation context key: every string of the input is known to be free of lone surrogates
# (`clean_text` was applied, or `json_text_is_clean` said there is none), so the models need not
# walk the input again at each level of nesting (that walk was a sixth of a request's CPU).
TEXT_IS_CLEAN = "text_is_clean"
CLEAN_TEXT_CONTEXT: Mapping[str, bool] = MappingProxyType({TEXT_IS_CLEAN: True})


def clean_text(value: Any) -> Any:
    """`value` with every lone UTF-16 surrogate in its strings replaced by U+FFFD.

    JSON may escape one (`"\\ud800"`, valid JSON), Python keeps it in the str, and no UTF-8
    encoder accepts it: one such branch, workflow, job or test name, from the API or a signed
    webhook, crashed the exposition writer. Every text the API and webhooks send passes
    through these models, so this is where it is made safe, once.
    """
    if isinstance(value, str):
        return value if value.isascii() else _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [clean_text(item) for item in value]
    if isinstance(value, dict):
        return {clean_text(key): clean_text(item) for key, item in value.items()}
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")
# How a lone surrogate can reach a str through `json.loads` of UTF-8 bytes: a \uD800-\uDFFF
# escape, or the surrogate's own UTF-8 bytes (json.loads decodes bytes with "surrogatepass").
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_UTF8 = re.compile(rb"\xed[\xa0-\xbf]")


def json_text_is_clean(body: bytes) -> bool:
    """True when `json.loads(body)` can hold no lone surrogate, so `clean_text` would change
    nothing; False also when merely unsure (another encoding than UTF-8, a valid escaped pair)."""
    # Substring tests first: a regex search over a whole page is ten times slower.
    if (b"\\ud" in body or b"\\uD" in body) and _SURROGATE_ESCAPE.search(body):
        return False
    if b"\xed" in body and _SURROGATE_UTF8.search(body):
        return False
    return json.detect_encoding(body) == "utf-8"


ItemT = TypeVar("ItemT", bound=ApiModel)


class Page(ApiModel, Generic[ItemT]):
    """One page of a paginated list; a missing or null `next_page_token` marks the last page."""

    items: list[ItemT] = Field(default_factory=list)
    next_page_token: str | None = None


# --- projects ------------------------------------------------------------------------------------


class VcsInfo(ApiModel):
    vcs_url: str | None = None
    provider: str | None = None
    default_branch: str | None = None


class Project(ApiModel):
    slug: str
    name: str
    id: str
    organization_name: str | None = None
    organization_slug: str | None = None
    organization_id: str | None = None
    vcs_info: VcsInfo = VcsInfo()


# --- pipelines, workflows, jobs -------------------------------------------------------------------


class PipelineError(ApiModel):
    type: str
    message: str = ""


class Actor(ApiModel):
    login: str | None = None
    avatar_url: str | None = None


class Trigger(ApiModel):
    type: str
    received_at: Timestamp | None = None
    actor: Actor | None = None


class Commit(ApiModel):
    subject: str | None = None
    body: str | None = None


class PipelineVcs(ApiModel):
    provider_name: str | None = None
    target_repository_url: str | None = None
    origin_repository_url: str | None = None
    revision: str | None = None
    branch: str | None = None
    tag: str | None = None
    review_id: str | None = None
    review_url: str | None = None
    commit: Commit | None = None


class Pipeline(ApiModel):
    id: str
    number: int
    project_slug: str
    created_at: Timestamp
    updated_at: Timestamp | None = None
    state: str
    errors: list[PipelineError] = Field(default_factory=list)
    trigger: Trigger | None = None
    trigger_parameters: dict[str, Any] = Field(default_factory=dict)
    vcs: PipelineVcs | None = None

    @property
    def branch(self) -> str | None:
        """`vcs.branch`, else `trigger_parameters.git.branch`.

        GitLab, GitHub App and Bitbucket DC pipelines carry no `vcs`
        (docs/circleci-api.md §Pipelines).
        """
        if self.vcs is not None and self.vcs.branch:
            return self.vcs.branch
        return self._git_parameter("branch")

    @property
    def tag(self) -> str | None:
        if self.vcs is not None and self.vcs.tag:
            return self.vcs.tag
        return self._git_parameter("tag")

    def _git_parameter(self, key: str) -> str | None:
        git = self.trigger_parameters.get("git")
        value = git.get(key) if isinstance(git, dict) else None
        return value if isinstance(value, str) and value else None


class Workflow(ApiModel):
    id: str
    name: str
    pipeline_id: str
    pipeline_number: int
    project_slug: str
    status: str
    created_at: Timestamp
    stopped_at: Timestamp | None = None
    started_by: str | None = None
    canceled_by: str | None = None
    errored_by: str | None = None
    tag: str | None = None
    auto_rerun_number: int | None = None
    max_auto_reruns: int | None = None


class Job(ApiModel):
    """A workflow's job; approval, blocked and cancelled jobs lack `job_number` and `started_at`."""

    id: str
    name: str
    type: str
    status: str
    project_slug: str | None = None
    job_number: int | None = None
    started_at: Timestamp | None = None
    stopped_at: Timestamp | None = None
    dependencies: list[str] = Field(default_factory=list)
    requires: dict[str, list[str]] = Field(default_factory=dict)
    approved_by: str | None = None
    canceled_by: str | None = None
    approval_request_id: str | None = None


class Executor(ApiModel):
    resource_class: str | None = None
    type: str | None = None


class ParallelRun(ApiModel):
    index: int
    status: str


class JobProject(ApiModel):
    id: str | None = None
    slug: str | None = None
    name: str | None = None
    external_url: str | None = None


class PipelineRef(ApiModel):
    id: str


class WorkflowRef(ApiModel):
    id: str
    name: str | None = None


class OrganizationRef(ApiModel):
    name: str


class ContextRef(ApiModel):
    name: str


class JobMessage(ApiModel):
    type: str
    message: str = ""
    reason: str | None = None


class JobDetails(ApiModel):
    number: int
    name: str
    status: str
    web_url: str | None = None
    parallelism: int | None = None
    created_at: Timestamp | None = None
    queued_at: Timestamp | None = None
    started_at: Timestamp | None = None
    stopped_at: Timestamp | None = None
    duration: int | None = Field(default=None, description="Milliseconds (Insights use seconds).")
    executor: Executor | None = None
    parallel_runs: list[ParallelRun] = Field(default_factory=list)
    project: JobProject | None = None
    pipeline: PipelineRef | None = None
    latest_workflow: WorkflowRef | None = None
    organization: OrganizationRef | None = None
    contexts: list[ContextRef] = Field(default_factory=list)
    messages: list[JobMessage] = Field(default_factory=list)

    @property
    def duration_seconds(self) -> float | None:
        return None if self.duration is None else self.duration / 1000.0


class TestResult(ApiModel):
    __test__ = False  # keeps pytest from collecting this class

    name: str
    result: str
    classname: str | None = None
    file: str | None = None
    source: str | None = None
    message: str | None = None
    # Seconds; the live API sometimes sends it as a string (docs/circleci-api.md §Test results),
    # which pydantic coerces.
    run_time: float = 0.0


# --- schedules and webhooks -----------------------------------------------------------------------


class ScheduleActor(ApiModel):
    id: str | None = None
    login: str | None = None
    name: str | None = None


class Timetable(ApiModel):
    per_hour: int | None = None
    hours_of_day: list[int] = Field(default_factory=list)
    days_of_week: list[str] = Field(default_factory=list)
    days_of_month: list[int] = Field(default_factory=list)
    months: list[str] = Field(default_factory=list)


class Schedule(ApiModel):
    id: str
    name: str
    project_slug: str
    description: str | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    actor: ScheduleActor | None = None
    timetable: Timetable = Timetable()


class WebhookScope(ApiModel):
    id: str
    type: str


class Webhook(ApiModel):
    id: str
    name: str
    url: str
    events: list[str] = Field(default_factory=list)
    verify_tls: bool | None = None
    signing_secret: str | None = Field(default=None, description="Masked by the API.")
    scope: WebhookScope | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


# --- Insights (durations in seconds; refreshed daily) ---------------------------------------------


class DurationMetrics(ApiModel):
    min: float | None = None
    mean: float | None = None
    median: float | None = None
    p95: float | None = None
    max: float | None = None
    standard_deviation: float | None = None
    total: float | None = None


class WorkflowMetrics(ApiModel):
    total_runs: int
    successful_runs: int
    failed_runs: int
    success_rate: float
    throughput: float
    mttr: float | None = None
    total_recoveries: int | None = None
    total_credits_used: int | None = None
    duration_metrics: DurationMetrics = DurationMetrics()


class ProjectWorkflowMetrics(ApiModel):
    name: str
    project_id: str | None = None
    window_start: Timestamp
    window_end: Timestamp
    metrics: WorkflowMetrics


class WorkflowRun(ApiModel):
    id: str
    branch: str | None = None
    status: str | None = None
    created_at: Timestamp
    stopped_at: Timestamp | None = None
    duration: int | None = None
    credits_used: int | None = None
    is_approval: bool = False


class JobRun(ApiModel):
    """One run of a job within a workflow (getProjectJobRuns); `duration` is in seconds."""

    id: str
    status: str | None = None
    started_at: Timestamp | None = None
    stopped_at: Timestamp | None = None
    duration: int | None = None
    credits_used: int | None = None


class JobMetrics(ApiModel):
    total_runs: int
    successful_runs: int
    failed_runs: int
    success_rate: float
    throughput: float
    total_credits_used: int | None = None
    duration_metrics: DurationMetrics = DurationMetrics()


class WorkflowJobMetrics(ApiModel):
    name: str
    window_start: Timestamp
    window_end: Timestamp
    metrics: JobMetrics


class Trends(ApiModel):
    """Ratios current/prior (1.0 = no change); only the 24 h, 7 d and 30 d windows have them."""

    total_runs: float | None = None
    failed_runs: float | None = None
    success_rate: float | None = None
    throughput: float | None = None
    mttr: float | None = None
    total_credits_used: float | None = None
    total_duration_secs: float | None = None
    p95_duration_secs: float | None = None
    median_duration_secs: float | None = None


class WorkflowSummaryMetrics(WorkflowMetrics):
    completed_runs: int | None = None
    window_start: Timestamp
    window_end: Timestamp


class WorkflowSummary(ApiModel):
    metrics: WorkflowSummaryMetrics
    trends: Trends = Trends()
    workflow_names: list[str] = Field(default_factory=list)


class TestInsight(ApiModel):
    __test__ = False  # keeps pytest from collecting this class

    test_name: str
    job_name: str
    classname: str | None = None
    file: str | None = None
    source: str | None = None
    total_runs: int
    failed_runs: int
    flaky: bool = False
    p95_duration: float | None = None


class TestCounts(ApiModel):
    __test__ = False  # keeps pytest from collecting this class

    error: int = 0
    failure: int = 0
    skipped: int = 0
    success: int = 0
    total: int = 0


class TestRunSummary(ApiModel):
    __test__ = False  # keeps pytest from collecting this class

    pipeline_number: int
    workflow_id: str
    success_rate: float
    test_counts: TestCounts = TestCounts()


class TestMetrics(ApiModel):
    """Computed by CircleCI from the 10 most recent runs of the workflow."""

    __test__ = False  # keeps pytest from collecting this class

    average_test_count: int = 0
    total_test_runs: int = 0
    most_failed_tests_extra: int = 0
    slowest_tests_extra: int = 0
    most_failed_tests: list[TestInsight] = Field(default_factory=list)
    slowest_tests: list[TestInsight] = Field(default_factory=list)
    test_runs: list[TestRunSummary] = Field(default_factory=list)


class FlakyTest(ApiModel):
    test_name: str
    job_name: str
    classname: str | None = None
    file: str | None = None
    source: str | None = None
    job_number: int | None = None
    workflow_name: str | None = None
    workflow_id: str | None = None
    workflow_created_at: Timestamp | None = None
    pipeline_number: int | None = None
    times_flaked: int = 0
    time_wasted: float | None = None


class FlakyTests(ApiModel):
    """Spec says kebab-case, the live API answers snake_case (circleci-api.md §Insights);
    both parse."""

    flaky_tests: list[FlakyTest] = Field(default_factory=list)
    total_flaky_tests: int = 0


class InsightsBranches(ApiModel):
    org_id: str | None = None
    project_id: str | None = None
    branches: list[str] = Field(default_factory=list)


class UsageMetrics(ApiModel):
    """The org and project totals of the Insights org summary; each level sends a subset."""

    total_runs: int | None = None
    total_duration_secs: int | None = None
    total_credits_used: int | None = None
    success_rate: float | None = None
    throughput: float | None = None


class UsageWithTrends(ApiModel):
    metrics: UsageMetrics = UsageMetrics()
    trends: Trends = Trends()


class OrgProjectSummary(UsageWithTrends):
    project_name: str


class OrgSummary(ApiModel):
    org_data: UsageWithTrends = UsageWithTrends()
    org_project_data: list[OrgProjectSummary] = Field(default_factory=list)
    all_projects: list[str] = Field(default_factory=list)


# --- API v1.1 single job --------------------------------------------------------------------------


class StepAction(ApiModel):
    name: str | None = None
    index: int = 0
    step: int | None = None
    type: str | None = None
    status: str | None = None
    exit_code: int | None = None
    failed: bool | None = None
    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    run_time_millis: int | None = None
    allocation_id: str | None = None
    has_output: bool = False
    # A pre-signed S3 URL: fetch it without the Circle-Token header
    # (docs/circleci-api.md §v1.1 single job).
    output_url: str | None = None


class OutputLine(ApiModel):
    """One chunk of an action's output (`output_url` body); `type` is "out" or "err"."""

    message: str = ""
    time: Timestamp | None = None
    type: str | None = None


class Step(ApiModel):
    name: str
    actions: list[StepAction] = Field(default_factory=list)


class JobV1Workflow(ApiModel):
    job_name: str | None = None
    job_id: str | None = None
    workflow_id: str | None = None
    workflow_name: str | None = None


class JobV1(ApiModel):
    """API v1.1 "single job": the only endpoint with step-level results."""

    build_num: int
    build_url: str | None = None
    status: str | None = None
    lifecycle: str | None = None
    outcome: str | None = None
    branch: str | None = None
    vcs_revision: str | None = None
    vcs_tag: str | None = None
    queued_at: Timestamp | None = None
    start_time: Timestamp | None = None
    stop_time: Timestamp | None = None
    build_time_millis: int | None = None
    workflows: JobV1Workflow | None = None
    steps: list[Step] = Field(default_factory=list)
