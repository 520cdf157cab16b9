"""An asyncio event loop on simulated time: idle waits take no wall time.

`bench/scale.py` runs the real `LiveCollector.run` for twenty 30-second cycles (one
`project_refresh` window) at up to 2,000 projects. On the wall clock that is ten minutes per
point; here the loop's clock jumps to the next timer whenever nothing can happen before it:

- no callback is ready and no socket is readable (a zero-timeout poll of the selector), and
- `is_busy()` says nothing is in flight (no API request or response body, no worker thread),
  because a reply from another process, or a thread's result, arrives on the real clock.

While anything is busy the loop waits on the real clock, so CPU time and network round trips
still count: only the time in which every task sleeps on a timer (polling intervals, the rate
limiter's waits, a simulated latency) is skipped. `anyio.current_time()`, `anyio.sleep`, and
deadlines all read `loop.time()`, so the exporter sees a consistent clock.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Callable

# A last real wait before each jump, for a wake-up no busy signal covers (a signal, a late
# self-pipe write). Short: a quiet cycle of 2,000 projects makes thousands of jumps.
_GRACE = 0.0005


class _SkippingSelector(selectors.DefaultSelector):
    """Polls without waiting, and tells the loop to jump instead of sleeping when idle."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        loop = self.loop
        if ready or loop is None or (timeout is not None and timeout <= 0):
            return ready
        if timeout is None or loop.is_busy():
            return super().select(timeout)  # a real wait: something arrives on the real clock
        started = time.monotonic()
        ready = super().select(min(timeout, _GRACE))
        if not ready:
            loop.skip(timeout - (time.monotonic() - started))
        return ready


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """`loop.time()` is the monotonic clock plus every idle wait skipped so far."""

    def __init__(self) -> None:
        selector = _SkippingSelector()
        super().__init__(selector)
        selector.loop = self
        self.skipped = 0.0
        self.is_busy: Callable[[], bool] = lambda: False

    def time(self) -> float:
        return super().time() + self.skipped

    def skip(self, seconds: float) -> None:
        if seconds > 0:
            self.skipped += seconds
