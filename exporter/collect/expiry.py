"""Stale-series expiry, a periodic task of its own: a branch, workflow or job nothing was seen
of for `collect.series_ttl` leaves the state (and so /metrics), whether or not anything is
rendered meanwhile."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio

from exporter.collect.telemetry import CollectTelemetry
from exporter.state import Expired, State

logger = logging.getLogger(__name__)

# A series lives for `series_ttl` (days by default): a minute late is soon enough to go.
EXPIRE_EVERY = 60.0
# Removed series named in the log line; the counts cover them all.
_LOGGED = 10


class StaleSeriesExpiry:
    def __init__(
        self,
        state: State,
        *,
        telemetry: CollectTelemetry,
        on_expired: Callable[[], None],
        clock: Callable[[], float] = time.time,
        every: float = EXPIRE_EVERY,
    ) -> None:
        self.state = state
        self.telemetry = telemetry
        self.on_expired = on_expired
        self.clock = clock
        self.every = every

    async def run(self) -> None:
        while True:
            await anyio.sleep(self.every)
            self.expire_once()

    def expire_once(self) -> Expired:
        """Remove the stale series now; log and count them, and ask for a re-render."""
        expired = self.state.expire(self.clock())
        if not expired.keys:
            return expired
        for kind, series in (
            ("workflow", expired.workflows),
            ("job", expired.jobs),
            ("branch", expired.branches),
        ):
            self.telemetry.count_expired(kind, len(series))
        named = sorted("/".join(key) for key in expired.workflows | expired.branches)
        logger.info(
            "removed stale series",
            extra={
                "workflows": len(expired.workflows),
                "jobs": len(expired.jobs),
                "branches": len(expired.branches),
                "keys": expired.keys,
                "series": ", ".join(named[:_LOGGED])
                + (f" and {len(named) - _LOGGED} more" if len(named) > _LOGGED else ""),
            },
        )
        self.on_expired()
        return expired
