"""Builders of schedules and pipelines shaped like the API's answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from exporter.circleci import models


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def schedule(
    name: str,
    *,
    id: str | None = None,
    branch: str = "main",
    actor: str = "scheduler-bot",
    timetable: dict[str, Any] | None = None,
    created_at: str = "2026-01-01T00:00:00Z",
) -> models.Schedule:
    return models.Schedule.model_validate(
        {
            "id": id or f"id-{name}",
            "name": name,
            "project-slug": "gh/acme/api",
            "created-at": created_at,
            "updated-at": created_at,
            "parameters": {"branch": branch},
            "actor": {"id": "a1", "login": actor, "name": actor},
            "timetable": timetable or {"per-hour": 1, "hours-of-day": [2], "days-of-week": []},
        }
    )


def pipeline(
    pipeline_id: str,
    created_at: float,
    *,
    branch: str = "main",
    actor: str = "scheduler-bot",
    trigger: str = "scheduled_pipeline",
    trigger_parameters: dict[str, Any] | None = None,
    state: str = "created",
) -> models.Pipeline:
    return models.Pipeline.model_validate(
        {
            "id": pipeline_id,
            "number": 1,
            "project_slug": "gh/acme/api",
            "created_at": iso(created_at),
            "state": state,
            "errors": [],
            "trigger": {"type": trigger, "received_at": iso(created_at), "actor": {"login": actor}},
            "trigger_parameters": trigger_parameters or {},
            "vcs": {"branch": branch, "revision": "abc"},
        }
    )
