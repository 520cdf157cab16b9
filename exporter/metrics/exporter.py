"""Metric families about the exporter itself, from a snapshot's collection records."""

from __future__ import annotations

import platform
from collections.abc import Iterator, Mapping

from exporter import __version__
from exporter.metrics.builder import BuiltFamily, FamilyBuilder
from exporter.state.snapshot import Snapshot


def exporter_families(snapshot: Snapshot, intervals: Mapping[str, float]) -> Iterator[BuiltFamily]:
    build_info = FamilyBuilder("circleci_exporter_build_info")
    build_info.add((__version__, platform.python_version()), 1.0)
    yield build_info.build()

    up = FamilyBuilder("circleci_up")
    last_success = FamilyBuilder("circleci_exporter_last_success_timestamp_seconds")
    errors = FamilyBuilder("circleci_exporter_collect_errors_total")
    for (project, collector), row in snapshot.collections.items():
        if collector == "live":
            up.add((project,), 1.0 if row.up else 0.0)
        if row.last_success is not None:
            last_success.add((project, collector), row.last_success)
        errors.add((project, collector), float(row.errors))
    yield up.build()
    yield last_success.build()
    yield errors.build()

    interval = FamilyBuilder("circleci_exporter_collect_interval_seconds")
    for collector, seconds in intervals.items():
        interval.add((collector,), seconds)
    yield interval.build()

    taken = FamilyBuilder("circleci_exporter_snapshot_timestamp_seconds")
    taken.add((), snapshot.taken_at)
    yield taken.build()

    watch_start = FamilyBuilder("circleci_exporter_watch_start_timestamp_seconds")
    watch_start.add((), snapshot.watch_start)
    yield watch_start.build()
