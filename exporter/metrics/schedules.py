"""Metric families of the schedules (exporter.state.schedules) from a snapshot of them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from exporter.metrics.builder import BuiltFamily, FamilyBuilder
from exporter.state.schedules import RUN_STATES, ScheduleKey, ScheduleRow


def schedule_families(schedules: Mapping[ScheduleKey, ScheduleRow]) -> Iterator[BuiltFamily]:
    info = FamilyBuilder("circleci_schedule_info")
    next_run = FamilyBuilder("circleci_schedule_next_run_timestamp_seconds")
    last_run = FamilyBuilder("circleci_schedule_last_run_timestamp_seconds")
    status = FamilyBuilder("circleci_schedule_last_run_status")
    missed = FamilyBuilder("circleci_schedule_missed_runs_total")
    last_missed = FamilyBuilder("circleci_schedule_last_missed_run_timestamp_seconds")
    for key, row in schedules.items():
        labels = (key.project, key.schedule)
        info.add((*labels, row.branch, row.actor), 1.0)
        if row.next_run is not None:
            next_run.add(labels, row.next_run)
        if row.last_run_at is not None:
            last_run.add(labels, row.last_run_at)
        if row.last_status is not None:
            status.add_state_set(labels, RUN_STATES, row.last_status)
        missed.add(labels, float(row.missed_runs))
        if row.last_missed_at is not None:
            last_missed.add(labels, row.last_missed_at)
    for family in (info, next_run, last_run, status, missed, last_missed):
        yield family.build()
