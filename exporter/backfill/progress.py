"""Progress on stderr: a bar redrawn in place on a terminal, one plain line per workflow
otherwise (logs, CI)."""

from __future__ import annotations

import time
from typing import TextIO

_WIDTH = 30


class Progress:
    def __init__(self, total: int, stream: TextIO, *, already_done: int = 0) -> None:
        self.total = total
        self.done = already_done
        self.stream = stream
        self.tty = stream.isatty()
        self.started = time.monotonic()

    def advance(self, what: str, runs: int, job_runs: int, requests: int) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        if self.tty:
            filled = _WIDTH * self.done // max(self.total, 1)
            bar = "#" * filled + "-" * (_WIDTH - filled)
            self.stream.write(
                f"\r[{bar}] {self.done}/{self.total} workflows, {requests} requests, "
                f"{elapsed:.0f}s \x1b[K"
            )
        else:
            self.stream.write(
                f"backfill: {self.done}/{self.total} {what}: {runs} runs, {job_runs} job runs "
                f"({requests} requests, {elapsed:.0f}s)\n"
            )
        self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
