"""The simulator's notion of "now": the real wall clock, or a manual clock that tests drive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class SimClock:
    """Real UTC wall clock by default; `SimClock.manual(t)` only moves when told to.

    The world never runs ahead of real time (that would put future timestamps into the exporter's
    metrics); `SimConfig.speed` compresses the world's durations instead.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._manual_now = _as_utc(start) if start is not None else None

    @classmethod
    def manual(cls, start: datetime) -> SimClock:
        return cls(start)

    @property
    def is_manual(self) -> bool:
        return self._manual_now is not None

    def now(self) -> datetime:
        if self._manual_now is None:
            return datetime.now(UTC)
        return self._manual_now

    def advance(self, seconds: float) -> datetime:
        """Move a manual clock forward; the world only moves forward, so negative steps fail."""
        if seconds < 0:
            raise ValueError(f"the clock cannot go backwards (advance by {seconds} s)")
        return self.set(self.now() + timedelta(seconds=seconds))

    def set(self, when: datetime) -> datetime:
        if self._manual_now is None:
            raise RuntimeError("only a manual SimClock can be set; use SimClock.manual(start)")
        when = _as_utc(when)
        if when < self._manual_now:
            raise ValueError(f"the clock cannot go backwards (from {self._manual_now} to {when})")
        self._manual_now = when
        return when

    def __repr__(self) -> str:
        mode = "manual" if self.is_manual else "wall"
        return f"SimClock({mode}, now={self.now().isoformat()})"


def _as_utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError(f"SimClock needs a timezone-aware datetime, got {when!r}")
    return when.astimezone(UTC)
