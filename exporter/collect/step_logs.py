"""The last lines of a failed step's log, fetched only when someone asks (the on-call page, the
log endpoint), through the same client, rate limiter and request metrics as everything else.
Logs never enter the state or the metrics.

Sources, in order (docs/circleci-api.md §v1.1 single job):
1. the action's `output_url` from API v1.1: pre-signed, fetched without the token, a JSON array
   of `{message, time, type}` with stdout and stderr interleaved in time order;
2. when there is none or it fails (it expires after a few days): the private endpoints CircleCI's
   own tooling reads, `/api/private/output/raw/<slug>/<job>/output/<index>/<step>` (stdout), then
   `.../error/...` (stderr), appended in that order.

A finished job's log never changes, so each is fetched once and cached, the cache bounded both
in entries and in bytes (least recently used first out). Lines come back with ANSI colour and
cursor codes removed, as plain text: the web layer escapes them for HTML.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

import anyio
from prometheus_client import CollectorRegistry, Counter

from exporter.catalog import BY_NAME
from exporter.circleci import CircleCIClient, CircleCIError
from exporter.log_tail import LogTail, LogUnavailable
from exporter.state.snapshot import FailedStep

# CSI sequences (colours, cursor moves), OSC sequences (titles, hyperlinks) and lone escapes.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
# Other control characters, except tab, would only garble the page.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_lines(text: str) -> list[str]:
    """Log text → display lines: ANSI codes gone; of a line rewritten with carriage returns
    (progress bars), what the terminal would finally show."""
    lines = []
    for raw in _ANSI.sub("", text).split("\n"):
        shown = raw.rstrip("\r").rsplit("\r", 1)[-1]
        lines.append(_CONTROL.sub("", shown))
    if lines and lines[-1] == "":
        lines.pop()
    return lines


@dataclass(frozen=True, slots=True)
class _Key:
    project: str
    job_number: int
    step_id: int
    index: int


class StepLogTelemetry:
    """Shows the cache bounds being hit (registered whether or not logs are served)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        family = BY_NAME["circleci_exporter_step_log_cache_evictions_total"]
        self._evictions = Counter(family.name, family.help, family.labels, registry=registry)

    def evicted(self, reason: str) -> None:
        self._evictions.labels(reason=reason).inc()


class StepLogs:
    """Read-only: reads step output through the client and caches it; changes nothing else."""

    def __init__(
        self,
        client: CircleCIClient,
        *,
        telemetry: StepLogTelemetry,
        max_entries: int = 64,
        max_bytes: int = 4 * 1024 * 1024,
        keep_lines: int = 1000,
    ) -> None:
        self.client = client
        self.telemetry = telemetry
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.keep_lines = keep_lines
        self._cache: OrderedDict[_Key, tuple[LogTail, int]] = OrderedDict()
        self._bytes = 0
        # One fetch per log at a time: a page and a bot asking at once cost one request.
        self._fetching: dict[_Key, anyio.Lock] = {}

    @property
    def cached(self) -> tuple[int, int]:
        """(entries, bytes) in the cache."""
        return len(self._cache), self._bytes

    async def tail(self, project: str, step: FailedStep) -> LogTail:
        if step.step_id is None or step.index is None:
            raise LogUnavailable("the failing step is not known (API v1.1 did not answer)")
        key = _Key(project, step.job_number, step.step_id, step.index)
        lock = self._fetching.setdefault(key, anyio.Lock())
        try:
            async with lock:
                hit = self._cache.get(key)
                if hit is not None:
                    self._cache.move_to_end(key)
                    return hit[0]
                tail = await self._fetch(key, step.output_url)
                self._store(key, tail)
                return tail
        finally:
            if not lock.locked() and not lock.statistics().tasks_waiting:
                self._fetching.pop(key, None)

    async def _fetch(self, key: _Key, output_url: str | None) -> LogTail:
        errors: list[str] = []
        if output_url:
            try:
                chunks = await self.client.get_action_output(output_url)
                text = "".join(chunk.message for chunk in chunks)
                return self._tail(text, "output_url")
            except CircleCIError as err:
                errors.append(str(err))
        try:
            parts = [
                await self.client.get_private_step_output(
                    key.project, key.job_number, key.index, key.step_id, stream
                )
                for stream in ("output", "error")
            ]
        except CircleCIError as err:
            errors.append(str(err))
            raise LogUnavailable("; ".join(errors)) from None
        return self._tail("".join(parts), "private")

    def _tail(self, text: str, source: str) -> LogTail:
        return LogTail(tuple(clean_lines(text)[-self.keep_lines :]), source)

    def _store(self, key: _Key, tail: LogTail) -> None:
        size = sum(len(line.encode()) + 1 for line in tail.lines)
        if size > self.max_bytes:
            self.telemetry.evicted("too_large")  # served, never kept
            return
        self._cache[key] = (tail, size)
        self._bytes += size
        while len(self._cache) > self.max_entries or self._bytes > self.max_bytes:
            self.telemetry.evicted("entries" if len(self._cache) > self.max_entries else "bytes")
            _, (_, dropped) = self._cache.popitem(last=False)
            self._bytes -= dropped
