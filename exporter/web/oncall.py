"""The on-call routes: the page at `/`, the same data as JSON at `/api/v1/failures`, and the log
tail of a failed step at `/failures/{project}/{job_number}/log`.

They only read the published snapshot and call a read-only `LogReader` (the composition root
passes `exporter.collect.step_logs.StepLogs`); they change nothing.
Served on the metrics listener only, never on the webhook listener. The log tail serves only
the current failed run of a job of a tracked project; anything else is a 404 (docs/oncall.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import anyio
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from exporter.log_tail import LogTail, LogUnavailable
from exporter.state.snapshot import FailedStep, Snapshot
from exporter.web import oncall_page
from exporter.web.failures import Failures, as_json, failures

MAX_LINES = 1000
# The page waits this long for the log lines of its red rows; slower ones show a note instead.
LOG_WAIT_SECONDS = 5.0
# Pages are self-contained: no script, no external asset, nothing from elsewhere.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class LogReader(Protocol):
    """Reads the last lines of a failed step's log; raises LogUnavailable when it cannot."""

    async def tail(self, project: str, step: FailedStep) -> LogTail: ...


@dataclass
class OnCall:
    snapshot: Callable[[], Snapshot]
    logs: LogReader | None  # None: `web.logs: false`
    log_lines: int = 50
    demo: bool = False
    telemetry_path: str = "/metrics"

    def routes(self) -> list[Route]:
        routes = [Route("/", self.page), Route("/api/v1/failures", self.api)]
        if self.logs is not None:
            routes.append(Route("/failures/{project:path}/{job_number:int}/log", self.log))
        return routes

    async def page(self, request: Request) -> Response:
        view, logs = await self._view()
        body = oncall_page.render(
            view,
            logs,
            now=time.time(),
            demo=self.demo,
            telemetry_path=self.telemetry_path,
            log_lines=self.log_lines,
        )
        return HTMLResponse(body, headers=_HEADERS)

    async def api(self, request: Request) -> Response:
        view, logs = await self._view()
        return JSONResponse(as_json(view, logs), headers={"Cache-Control": "no-store"})

    async def log(self, request: Request) -> Response:
        project = request.path_params["project"]
        number = request.path_params["job_number"]
        step = _current_failure(self.snapshot(), project, number)
        if step is None or self.logs is None:
            return _not_found()
        try:
            lines = min(MAX_LINES, max(1, int(request.query_params.get("lines", self.log_lines))))
        except ValueError:
            return HTMLResponse("lines must be a number\n", status_code=400, headers=_HEADERS)
        try:
            tail = await self.logs.tail(project, step)
        except LogUnavailable as err:
            body = oncall_page.log_page(project, step, [], error=str(err))
            return HTMLResponse(body, status_code=502, headers=_HEADERS)
        body = oncall_page.log_page(project, step, list(tail.lines[-lines:]), error=None)
        return HTMLResponse(body, headers=_HEADERS)

    async def _view(self) -> tuple[Failures, dict[str, list[str] | str]]:
        view = failures(self.snapshot(), logs_enabled=self.logs is not None)
        logs: dict[str, list[str] | str] = {}
        wanted = [(r.project, j) for r in view.red for j in r.jobs if j.log_path is not None]
        if self.logs is None or not wanted:
            return view, logs
        reader = self.logs

        async def fetch(project: str, path: str, step: FailedStep) -> None:
            logs[path] = "log not fetched yet: CircleCI took too long"
            with anyio.move_on_after(LOG_WAIT_SECONDS):
                try:
                    tail = await reader.tail(project, step)
                except LogUnavailable as err:
                    logs[path] = str(err)
                else:
                    logs[path] = list(tail.lines[-self.log_lines :])

        async with anyio.create_task_group() as tg:
            for project, job in wanted:
                assert job.log_path is not None
                tg.start_soon(fetch, project, job.log_path, job.failed_step)
        return view, logs


def _current_failure(snapshot: Snapshot, project: str, job_number: int) -> FailedStep | None:
    """The failed step of `job_number` if it is the current failed run of a job of a tracked
    project, with a known step; else None."""
    if project not in snapshot.projects:
        return None
    for (p, _, _, _), row in snapshot.jobs.items():
        step = row.failed_step
        if p == project and step is not None and step.job_number == job_number:
            return step if step.step_id is not None else None
    return None


def _not_found() -> Response:
    return HTMLResponse("not found\n", status_code=404, headers=_HEADERS)
