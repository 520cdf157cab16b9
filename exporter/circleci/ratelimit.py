"""The one request limiter every CircleCI API call of the process goes through.

CircleCI publishes no rate-limit numbers and throttles "frequent polling" per user
(docs/circleci-api.md §Rate limits),
so the exporter paces itself with a token bucket, caps how many requests are in flight, and after a
429 holds back every request until the server's wait is over (`block_until`).

anyio has no token bucket (only `CapacityLimiter`), hence the small one here.
"""

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio


class RateLimiter:
    """Token bucket (`requests_per_second`, `burst`) plus a concurrency cap.

    Times are on `clock` (default `anyio.current_time`, the event loop's monotonic clock); tests
    inject a fake `clock` and `sleep`.
    """

    def __init__(
        self,
        requests_per_second: float,
        burst: int,
        max_concurrency: int,
        *,
        clock: Callable[[], float] = anyio.current_time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        if requests_per_second <= 0 or not math.isfinite(requests_per_second):
            raise ValueError(f"requests_per_second must be > 0, got {requests_per_second}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self._rate = requests_per_second
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._refilled_at: float | None = None
        self._blocked_until = -math.inf
        # One waiter at a time computes its wait, so requests leave in arrival order (Lock is FIFO).
        self._turn = anyio.Lock()
        self._concurrency = anyio.CapacityLimiter(max_concurrency)

    def now(self) -> float:
        """The current time on this limiter's clock, for computing `block_until` deadlines."""
        return self._clock()

    def block_until(self, deadline: float) -> None:
        """Let no request start before `deadline` (limiter clock). A later deadline wins."""
        self._blocked_until = max(self._blocked_until, deadline)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a concurrency slot and a rate token, and hold the slot for the request."""
        async with self._concurrency:
            await self._take_token()
            yield

    async def _take_token(self) -> None:
        async with self._turn:
            while True:
                now = self._clock()
                if now < self._blocked_until:
                    await self._sleep(self._blocked_until - now)
                    continue
                self._refill(now)
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await self._sleep((1 - self._tokens) / self._rate)

    def _refill(self, now: float) -> None:
        if self._refilled_at is not None:
            elapsed = max(0.0, now - self._refilled_at)
            self._tokens = min(float(self._burst), self._tokens + elapsed * self._rate)
        self._refilled_at = now
