"""The shared limiter, driven by a fake clock so the assertions are about waits, not wall time."""

from typing import TYPE_CHECKING

import anyio
import pytest

from exporter.circleci import Priority, RateLimiter, requests_at
from exporter.circleci.ratelimit import STEADY_EVERY

if TYPE_CHECKING:  # conftest is not importable by name when several test folders have one
    from conftest import FakeClock


async def _acquire_times(limiter: RateLimiter, clock: "FakeClock", count: int) -> list[float]:
    times = []
    for _ in range(count):
        async with limiter.slot():
            times.append(clock.now)
    return times


@pytest.mark.anyio
async def test_burst_then_steady_rate(clock: "FakeClock") -> None:
    limiter = RateLimiter(2.0, 3, 10, clock=clock, sleep=clock.sleep)
    assert await _acquire_times(limiter, clock, 5) == [0.0, 0.0, 0.0, 0.5, 1.0]


@pytest.mark.anyio
async def test_fractional_rate(clock: "FakeClock") -> None:
    limiter = RateLimiter(0.25, 1, 10, clock=clock, sleep=clock.sleep)
    assert await _acquire_times(limiter, clock, 3) == [0.0, 4.0, 8.0]


@pytest.mark.anyio
async def test_idle_time_refills_up_to_burst_only(clock: "FakeClock") -> None:
    limiter = RateLimiter(1.0, 2, 10, clock=clock, sleep=clock.sleep)
    await _acquire_times(limiter, clock, 2)
    clock.now += 100.0
    assert await _acquire_times(limiter, clock, 3) == [100.0, 100.0, 101.0]


@pytest.mark.anyio
async def test_block_until_holds_every_request(clock: "FakeClock") -> None:
    limiter = RateLimiter(100.0, 100, 10, clock=clock, sleep=clock.sleep)
    limiter.block_until(limiter.now() + 30.0)
    limiter.block_until(limiter.now() + 5.0)  # an earlier deadline never shortens the block
    started: list[float] = []

    async def request() -> None:
        async with limiter.slot():
            started.append(clock.now)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(request)
    assert started == [30.0, 30.0, 30.0]


@pytest.mark.anyio
async def test_concurrency_limit(clock: "FakeClock") -> None:
    limiter = RateLimiter(1000.0, 1000, 2, clock=clock, sleep=clock.sleep)
    in_flight = 0
    peak = 0
    finished = 0

    async def request() -> None:
        nonlocal in_flight, peak, finished
        async with limiter.slot():
            in_flight += 1
            peak = max(peak, in_flight)
            for _ in range(5):  # stay inside the slot while the others try to get in
                await anyio.lowlevel.checkpoint()
            in_flight -= 1
        finished += 1

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(request)
    assert (peak, finished) == (2, 6)


async def _admission_order(limiter: RateLimiter, priorities: list[Priority]) -> list[int]:
    """Start a request per priority, in list order (each waits behind the first, which holds
    the turn while it waits for its token); the order in which they were let through."""
    admitted: list[int] = []

    async def request(index: int, priority: Priority) -> None:
        with requests_at(priority):
            async with limiter.slot():
                admitted.append(index)

    async with anyio.create_task_group() as tg:
        for index, priority in enumerate(priorities):
            tg.start_soon(request, index, priority)
    return admitted


@pytest.mark.anyio
async def test_a_waiting_loading_request_goes_before_earlier_steady_ones(
    clock: "FakeClock",
) -> None:
    limiter = RateLimiter(1.0, 1, 10, clock=clock, sleep=clock.sleep)
    steady, loading = Priority.STEADY, Priority.LOADING
    order = await _admission_order(limiter, [steady, steady, steady, loading, loading])
    # The first held the turn already; then loading in arrival order, then steady.
    assert order == [0, 3, 4, 1, 2]
    assert clock.now == 4.0  # still one request a second


@pytest.mark.anyio
async def test_a_steady_request_gets_one_turn_in_steady_every(clock: "FakeClock") -> None:
    limiter = RateLimiter(1000.0, 1, 10, clock=clock, sleep=clock.sleep)
    loading = STEADY_EVERY + 5
    priorities = [Priority.STEADY, Priority.STEADY] + [Priority.LOADING] * loading
    order = await _admission_order(limiter, priorities)
    # After the first: STEADY_EVERY - 1 loading turns, the waiting steady one, the rest.
    first_loading = list(range(2, 2 + loading))
    expected = [0, *first_loading[: STEADY_EVERY - 1], 1, *first_loading[STEADY_EVERY - 1 :]]
    assert order == expected


@pytest.mark.anyio
async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    limiter = RateLimiter(1000.0, 1000, 1)
    release = anyio.Event()
    admitted: list[str] = []
    cancelled = anyio.CancelScope()

    async def request(name: str, priority: Priority) -> None:
        with cancelled if name == "cancelled" else anyio.CancelScope():
            async with limiter.slot(priority):
                admitted.append(name)
                if name == "holder":
                    await release.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(request, "holder", Priority.STEADY)
        await anyio.wait_all_tasks_blocked()
        # "next" takes the turn and waits for the one concurrency slot; the others wait.
        tg.start_soon(request, "next", Priority.STEADY)
        tg.start_soon(request, "cancelled", Priority.LOADING)
        tg.start_soon(request, "last", Priority.STEADY)
        await anyio.wait_all_tasks_blocked()
        cancelled.cancel()
        release.set()
    assert admitted == ["holder", "next", "last"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0.0, 1, 1), "requests_per_second"),
        ((float("nan"), 1, 1), "requests_per_second"),
        ((1.0, 0, 1), "burst"),
        ((1.0, 1, 0), "max_concurrency"),
    ],
)
def test_rejects_invalid_settings(args: tuple[float, int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RateLimiter(*args)
