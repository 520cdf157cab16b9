"""What the exporter knows about each project's schedules, as the schedule tracking last set it.

Each project's rows are replaced as a whole, so a schedule deleted in CircleCI disappears (with
every series of it) at the next schedule read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

# The state set of circleci_schedule_last_run_status.
RUN_STATES = ("success", "failed", "error", "canceled", "running")


class ScheduleKey(NamedTuple):
    project: str
    schedule: str  # the schedule's name (made unique within its project)


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    branch: str  # the branch (or tag) it runs on
    actor: str  # login of the user (or system) its pipelines are attributed to
    next_run: float | None  # start of the next expected slot; None: the timetable never fires
    last_run_at: float | None  # created_at of the newest pipeline attributed to it
    last_status: str | None  # success, failed, error, canceled or running; None: unknown
    missed_runs: int  # expected slots that passed their grace period with no pipeline
    last_missed_at: float | None  # start of the newest such slot


class ScheduleStore:
    def __init__(self) -> None:
        self._projects: dict[str, Mapping[str, ScheduleRow]] = {}
        self._changed: set[str] = set()

    def replace_project(self, project: str, rows: Mapping[str, ScheduleRow]) -> None:
        """Everything known about the project's schedules, keyed by schedule name."""
        # Rows are rebuilt as time passes; the same rows again change nothing to publish.
        if self._projects.get(project) != rows:
            self._projects[project] = MappingProxyType(dict(rows))
            self._changed.add(project)

    def take_changes(self) -> frozenset[str]:
        """The projects whose rows changed since the last call (the first: all so far)."""
        changed, self._changed = frozenset(self._changed), set()
        return changed

    def by_project(self) -> Mapping[str, Mapping[str, ScheduleRow]]:
        """project → schedule name → row; immutable (the rows of a project are replaced whole)."""
        return MappingProxyType(dict(self._projects))

    def snapshot(self) -> Mapping[ScheduleKey, ScheduleRow]:
        return MappingProxyType(
            {
                ScheduleKey(project, name): row
                for project, rows in self._projects.items()
                for name, row in rows.items()
            }
        )
