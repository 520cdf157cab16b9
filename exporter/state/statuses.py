"""CircleCI status strings, as the API spells them (docs/circleci-api.md §Workflows, §Jobs)."""

WORKFLOW_STATUSES = (
    "success", "running", "not_run", "failed", "error", "failing", "on_hold", "canceled",
    "unauthorized",
)  # fmt: skip
WORKFLOW_TERMINAL = ("success", "failed", "error", "canceled", "unauthorized", "not_run")
WORKFLOW_IN_PROGRESS = ("running", "failing", "on_hold")

JOB_TERMINAL = (
    "success", "failed", "canceled", "unauthorized", "not_run", "infrastructure_fail",
    "timedout", "terminated-unknown", "retried",
)  # fmt: skip


def workflow_finished(status: str, stopped_at: float | None) -> bool:
    """The one rule, for the state and the collectors alike, of a finished workflow run: its
    `stopped_at` is set, whatever its status is called, or its status is a known terminal one.
    CircleCI adds statuses; a finished workflow with one nobody knew (`exploded`) once kept its
    pipeline unsettled and re-read every cycle, forever."""
    return stopped_at is not None or status in WORKFLOW_TERMINAL


def job_finished(status: str, stopped_at: float | None) -> bool:
    """`workflow_finished` for a job run."""
    return stopped_at is not None or status in JOB_TERMINAL


# A failure streak counts these; any other completed status ends it.
FAILURES = frozenset({"failed", "error"})
# A job run that failed: the ones whose failing step is worth finding.
JOB_FAILURES = frozenset({"failed", "infrastructure_fail", "timedout"})

TEST_RESULTS = ("success", "failure", "skipped")
# Every other `result` string a test reporter sends is counted under this one.
OTHER_TEST_RESULT = "other"
