"""Settings of a simulated CircleCI organisation."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

FlakyTestsCasing = Literal["snake", "kebab"]


def new_token() -> str:
    """A fresh personal API token, in the shape of CircleCI's (`CCIPAT_...`)."""
    return f"CCIPAT_sim_{secrets.token_hex(20)}"


@dataclass(frozen=True)
class SimConfig:
    """What the fake organisation looks like and how the fake API behaves.

    Durations in the world (`history`, run times, arrival gaps, the 90-day retention) are in world
    time; `speed` divides every one of them, so speed 60 turns a 10-minute workflow into 10 s and
    seven days of history into 2.8 hours.
    """

    projects: int = 20
    seed: int = 1
    speed: float = 1.0
    history: timedelta | float = timedelta(days=7)
    # The token every API request must carry (docs/simulator.md "Authentication"); a fresh one
    # unless given, so no client's 401 path goes untested.
    token: str = field(default_factory=new_token)
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_duplicate_ratio: float = 0.05
    webhook_reorder_ratio: float = 0.05
    flaky_tests_casing: FlakyTestsCasing = "snake"
    # Slugs of the projects the token's user follows; None: every project. Following decides
    # what the org pipeline feed shows and what v1.1 /projects lists (circleci-api.md §Pipelines).
    followed: tuple[str, ...] | None = None
    # Slugs of the projects that go on building after the clock's start; the others keep their
    # history but create no pipeline from the start on (quiet: the scale benchmark's
    # organisation at rest). None: every project builds.
    active: tuple[str, ...] | None = None
    # World seconds between two Insights refreshes. CircleCI refreshes Insights about daily
    # (docs/circleci-api.md §Insights freshness); a minute keeps demos and tests lively
    # while answers stay stable.
    insights_refresh: float = 60.0
    # World seconds after the start at which the first project's `smoke` schedule stops firing
    # (exporter/simulator/schedules.py): 3 h, so the demo (speed 60) misses a run within minutes.
    schedule_stop_after: float = 3 * 3600.0

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("token must not be empty")
        if self.projects < 1:
            raise ValueError(f"projects must be at least 1, got {self.projects}")
        if not math.isfinite(self.speed) or self.speed <= 0:
            raise ValueError(f"speed must be a positive finite number, got {self.speed}")
        if self.insights_refresh <= 0:
            raise ValueError(f"insights_refresh must be positive, got {self.insights_refresh}")
        if self.history_seconds < 0:
            raise ValueError(f"history must not be negative, got {self.history}")
        for name in ("webhook_duplicate_ratio", "webhook_reorder_ratio"):
            ratio = getattr(self, name)
            if not 0.0 <= ratio <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {ratio}")
        if self.flaky_tests_casing not in ("snake", "kebab"):
            raise ValueError(
                f"flaky_tests_casing must be 'snake' or 'kebab', got {self.flaky_tests_casing!r}"
            )

    @property
    def history_seconds(self) -> float:
        if isinstance(self.history, timedelta):
            return self.history.total_seconds()
        return float(self.history)

    def __repr__(self) -> str:
        # The token and the webhook secret are credentials: never print them.
        return (
            f"SimConfig(projects={self.projects}, seed={self.seed}, speed={self.speed}, "
            f"history={self.history_seconds}s, token=<set>, "
            f"webhook_url={self.webhook_url!r}, flaky_tests_casing={self.flaky_tests_casing!r})"
        )
