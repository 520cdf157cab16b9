"""The named keys of the picture: which project, branch, workflow or job a value belongs to.

NamedTuples, so that a key still hashes, sorts and unpacks like the label-value tuple it
stands for (the exposition passes it on as label values, in catalog order), and so that its
fields say what each position is. The state builds them; the snapshot, the exposition, the
collectors and the Insights store share them.
"""

from __future__ import annotations

from typing import NamedTuple

# -- the live picture: every key names its project ---------------------------------------


class BranchKey(NamedTuple):
    project: str
    branch: str


class WorkflowKey(NamedTuple):
    project: str
    branch: str
    workflow: str


class JobKey(NamedTuple):
    project: str
    branch: str
    workflow: str
    job: str


class PipelineKey(NamedTuple):
    """Pipelines counted per trigger type."""

    project: str
    branch: str
    trigger: str


class PipelineErrorKey(NamedTuple):
    project: str
    branch: str
    error_type: str


class WorkflowRunKey(NamedTuple):
    """Completed workflow runs, per terminal status."""

    project: str
    branch: str
    workflow: str
    status: str


class JobRunKey(NamedTuple):
    """Completed job runs, per terminal status."""

    project: str
    branch: str
    workflow: str
    job: str
    status: str


class CollectionKey(NamedTuple):
    """The health of one collector (live, insights) for one project."""

    project: str
    collector: str


# -- within one project (its Insights, its start-up history) ------------------------------


class BranchWorkflowKey(NamedTuple):
    """A workflow series of one project: `branch` is its label (`other`, `tags`, a name)."""

    branch: str
    workflow: str


class TrendKey(NamedTuple):
    branch: str
    workflow: str
    trend: str


class BranchJobKey(NamedTuple):
    branch: str
    workflow: str
    job: str


class BranchTestKey(NamedTuple):
    branch: str
    workflow: str
    job: str
    test: str
    classname: str


class FlakyTestKey(NamedTuple):
    """Insights reports flaky tests per project, across branches."""

    workflow: str
    job: str
    test: str
    classname: str
