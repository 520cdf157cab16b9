"""The global circuit breaker: when CircleCI cannot be reached at all, stop hammering it.

During an outage every project's requests fail with connection errors and are retried, so the
exporter sent more requests than when healthy. After `failures` connection failures in a row,
across all projects, the breaker asks for a pause of every request; each further failure doubles
the pause, up to `max_pause`. Any HTTP answer, even an error status, closes it again.
"""

from __future__ import annotations

import math


class CircuitBreaker:
    def __init__(self, failures: int = 10, *, base_pause: float = 1.0, max_pause: float = 300.0):
        if failures < 1:
            raise ValueError(f"failures must be >= 1, got {failures}")
        if not (0 < base_pause <= max_pause) or not math.isfinite(max_pause):
            raise ValueError("need 0 < base_pause <= max_pause < inf")
        self.failures = failures
        self.base_pause = base_pause
        self.max_pause = max_pause
        self._in_a_row = 0

    def answered(self) -> None:
        """The server answered (any status): it is reachable."""
        self._in_a_row = 0

    def failed(self) -> float | None:
        """A connection failure or timeout; returns the pause to apply to every request, if any."""
        self._in_a_row += 1
        beyond = self._in_a_row - self.failures
        if beyond < 0:
            return None
        return min(self.max_pause, self.base_pause * 2.0 ** min(beyond, 64))
