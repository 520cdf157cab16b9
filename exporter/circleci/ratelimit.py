"""The one request limiter every CircleCI API call of the process goes through.

CircleCI publishes no rate-limit numbers and throttles "frequent polling" per user
(docs/circleci-api.md §Rate limits),
so the exporter paces itself with a token bucket, caps how many requests are in flight, and after a
429 holds back every request until the server's wait is over (`block_until`).

Requests wait their turn by priority: those of a project still loading (its first picture) go
before steady-state polls, so that start-up takes about the rate limit's bound however many
projects are already polling (issue 19). Rule against starvation: while both kinds wait, one
turn in `STEADY_EVERY` goes to the oldest steady-state request. Within a priority, arrival order.

anyio has no token bucket (only `CapacityLimiter`), nor a priority lock, hence the small ones here.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar

import anyio

# While loading requests wait, 1 turn in 20 goes to a waiting steady-state one: start-up takes
# at most ~5% longer than the rate limit's bound, and a steady poll still gets >= 5% of the rate.
STEADY_EVERY = 20


class Priority(enum.IntEnum):
    LOADING = 0  # a project's first picture: its first cycle and its start-up history read
    STEADY = 1  # everything else


_PRIORITY: ContextVar[Priority] = ContextVar("request_priority", default=Priority.STEADY)


@contextmanager
def requests_at(priority: Priority) -> Iterator[None]:
    """Send the requests made inside this block, and in the tasks it starts, at `priority`."""
    token = _PRIORITY.set(priority)
    try:
        yield
    finally:
        _PRIORITY.reset(token)


def current_priority() -> Priority:
    """The priority requests are sent at here (`requests_at`); STEADY outside any."""
    return _PRIORITY.get()


class RateLimiter:
    """Token bucket (`requests_per_second`, `burst`) plus a concurrency cap, taken in priority
    order (see the module's docstring).

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
        # One waiter at a time holds the turn: it waits for a concurrency slot and a token,
        # then hands the turn to the next waiter by priority.
        self._turn_taken = False
        self._waiting: dict[Priority, deque[anyio.Event]] = {p: deque() for p in Priority}
        self._loading_turns = 0  # given to loading requests while a steady one waited
        self._concurrency = anyio.CapacityLimiter(max_concurrency)

    def now(self) -> float:
        """The current time on this limiter's clock, for computing `block_until` deadlines."""
        return self._clock()

    def block_until(self, deadline: float) -> None:
        """Let no request start before `deadline` (limiter clock). A later deadline wins."""
        self._blocked_until = max(self._blocked_until, deadline)

    @asynccontextmanager
    async def slot(self, priority: Priority | None = None) -> AsyncIterator[None]:
        """Wait for a concurrency slot and a rate token, and hold the slot for the request.
        `priority`: by default the one of `requests_at` around the caller."""
        await self._take_turn(current_priority() if priority is None else priority)
        try:
            await self._concurrency.acquire()
            try:
                await self._take_token()
            except BaseException:
                self._concurrency.release()
                raise
        finally:
            self._pass_turn()
        try:
            yield
        finally:
            self._concurrency.release()

    async def _take_turn(self, priority: Priority) -> None:
        if not self._turn_taken:
            self._turn_taken = True
            return
        handed = anyio.Event()
        self._waiting[priority].append(handed)
        try:
            await handed.wait()
        except BaseException:
            if handed.is_set():
                self._pass_turn()  # handed the turn while being cancelled: pass it on
            else:
                self._waiting[priority].remove(handed)
            raise

    def _pass_turn(self) -> None:
        loading, steady = self._waiting[Priority.LOADING], self._waiting[Priority.STEADY]
        if steady and (not loading or self._loading_turns >= STEADY_EVERY - 1):
            self._loading_turns = 0
            steady.popleft().set()
        elif loading:
            self._loading_turns = self._loading_turns + 1 if steady else 0
            loading.popleft().set()
        else:
            self._turn_taken = False

    async def _take_token(self) -> None:
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
