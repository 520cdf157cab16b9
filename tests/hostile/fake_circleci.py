"""A small fake CircleCI (standard library only): a healthy project beside hostile ones.

`gh/ocean/healthy` always answers well. Each hostile project is named after its misbehaviour,
`gh/ocean/<behaviour>`, and misbehaves in one way only, as an attacker or a broken network
would:

- surrogates: lone UTF-16 surrogates in branch, workflow, job and test names
- trickle: the pipeline list arrives a byte per second
- huge: the pipeline list is an endless chunked body
- endless_pages: the pipeline list always hands out a fresh next_page_token
- vanish: the pipeline's workflows answer 404 after the first read; a new pipeline follows
- unknown_status: a finished workflow with a status no one has heard of ("exploded")
- future: timestamps in the year 9999
- many_tests: 5000 test results, each with a different `result` string
- many_workflows: a pipeline with 30 workflows, each with its own name
- rate_limited: its first request answers 429 with Retry-After: 999999
- echo_token: errors that echo the token raw, URL-encoded and as a Python bytes repr
- outage: nothing odd until the test sets `down`: then every connection, for every project, is
  dropped without an answer, as when CircleCI is unreachable

Every request must carry the exact token (`Circle-Token`), or it gets a 401.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

HEALTHY = "healthy"
BEHAVIOURS = (
    "surrogates", "trickle", "huge", "endless_pages", "vanish", "unknown_status", "future",
    "many_tests", "many_workflows", "rate_limited", "echo_token", "outage",
)  # fmt: skip


def slug_of(name: str) -> str:
    return f"gh/ocean/{name}"


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


class FakeCircleCI:
    def __init__(self, behaviours: Iterable[str], token: str) -> None:
        self.behaviours = tuple(behaviours)
        assert set(self.behaviours) <= set(BEHAVIOURS), self.behaviours
        # Longest first, so that no name is taken for one it contains.
        self._names = sorted((HEALTHY, *self.behaviours), key=len, reverse=True)
        self.token = token
        self.started = time.time()
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._vanished = False
        self._rate_limited = False
        self.down = False
        self.dropped = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api"

    def __enter__(self) -> FakeCircleCI:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- the data: `kind` is the project's name, `healthy` or its misbehaviour -------------

    @staticmethod
    def _text(kind: str, text: str) -> str:
        return text + "\ud800" if kind == "surrogates" else text

    def _times(self, kind: str) -> tuple[float, float]:
        if kind == "future":
            far = datetime(9999, 12, 31, tzinfo=UTC).timestamp()
            return far, far + 60
        return self.started - 120, self.started - 60

    def _pipelines(self, kind: str) -> list[dict[str, Any]]:
        created, _ = self._times(kind)
        numbers = [2, 1] if kind == "vanish" and self._vanished else [1]
        return [
            {
                "id": f"{kind}-p{n}", "number": n, "project_slug": slug_of(kind),
                "state": "created", "created_at": _iso(created + n),
                "updated_at": _iso(created + n), "vcs": {"branch": self._text(kind, "main")},
                "trigger": {"type": "webhook"},
            }
            for n in numbers
        ]  # fmt: skip

    def _workflows(self, kind: str, pipeline_id: str) -> list[dict[str, Any]]:
        created, stopped = self._times(kind)
        status = "exploded" if kind == "unknown_status" else "success"
        finished: str | None = _iso(stopped)
        if kind == "vanish" and pipeline_id.endswith("-p1"):
            status, finished = "running", None
        number = int(pipeline_id.rsplit("-p", 1)[1])
        names = [f"build-{i}" for i in range(30)] if kind == "many_workflows" else ["build"]
        return [
            {
                "id": f"{pipeline_id}-w{i}", "name": self._text(kind, name),
                "pipeline_id": pipeline_id, "pipeline_number": number,
                "project_slug": slug_of(kind), "status": status, "created_at": _iso(created),
                "stopped_at": finished,
            }
            for i, name in enumerate(names)
        ]  # fmt: skip

    def _jobs(self, kind: str, workflow_id: str) -> list[dict[str, Any]]:
        created, stopped = self._times(kind)
        running = kind == "vanish" and "-p1-" in workflow_id
        return [
            {
                "id": f"{workflow_id}-j", "name": self._text(kind, "test"), "type": "build",
                "status": "running" if running else "success", "job_number": 7,
                "project_slug": slug_of(kind), "started_at": _iso(created),
                "stopped_at": None if running else _iso(stopped),
            }
        ]  # fmt: skip

    def _tests(self, kind: str) -> list[dict[str, Any]]:
        if kind == "many_tests":
            return [
                {"name": f"t{i}", "classname": "c", "result": f"weird-{i}", "run_time": 0.1}
                for i in range(5000)
            ]
        return [
            {"name": self._text(kind, "test_ok"), "classname": "c", "result": "success",
             "run_time": 0.1}
        ]  # fmt: skip

    # --- the server -------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    fake._route(self)

        return Handler

    def _kind(self, path: str) -> str:
        for name in self._names:
            if f"/ocean/{name}" in path or f"/{name}-p" in path:
                return name
        return HEALTHY

    def _route(self, h: BaseHTTPRequestHandler) -> None:
        if self.down:
            with self._lock:
                self.dropped += 1
            h.close_connection = True
            return
        url = urlsplit(h.path)
        path = url.path.removeprefix("/api")
        kind = self._kind(path)
        with self._lock:
            self.requests[path] += 1
            first_429 = kind == "rate_limited" and not self._rate_limited
            self._rate_limited |= first_429
        if h.headers.get("Circle-Token") != self.token:
            return self._json(h, 401, {"message": "You must log in first."})
        if first_429:
            return self._json(h, 429, {"message": "slow down"}, {"Retry-After": "999999"})
        if kind == "echo_token" and path.endswith("/pipeline"):
            echoes = f"{self.token} {quote(self.token, safe='')} {self.token.encode()!r}"
            return self._json(h, 400, {"message": f"bad request for token {echoes}"})
        parts = path.strip("/").split("/")
        if path.startswith("/v2/project/") and len(parts) == 5:
            return self._json(h, 200, {
                "slug": slug_of(kind), "name": kind, "id": f"id-{kind}",
                "organization_name": "ocean",
                "vcs_info": {"default_branch": self._text(kind, "main"),
                             "vcs_url": f"https://github.com/ocean/{kind}"},
            })  # fmt: skip
        if path.endswith("/pipeline") and path.startswith("/v2/project/"):
            return self._pipeline_list(h, kind, parse_qs(url.query))
        if path.startswith("/v2/pipeline/") and path.endswith("/workflow"):
            pipeline_id = parts[2]
            if kind == "vanish" and pipeline_id.endswith("-p1"):
                with self._lock:
                    if self.requests[path] > 1:
                        self._vanished = True
                        return self._json(h, 404, {"message": "Pipeline not found"})
            return self._page(h, self._workflows(kind, pipeline_id))
        if path.startswith("/v2/workflow/") and path.endswith("/job"):
            return self._page(h, self._jobs(kind, parts[2]))
        if path.endswith("/tests"):
            return self._page(h, self._tests(kind))
        if "/job/" in path:
            created, stopped = self._times(kind)
            return self._json(h, 200, {
                "number": 7, "name": "test", "status": "success", "queued_at": _iso(created - 5),
                "started_at": _iso(created), "stopped_at": _iso(stopped),
            })  # fmt: skip
        return self._json(h, 404, {"message": "Not found"})

    def _pipeline_list(
        self, h: BaseHTTPRequestHandler, kind: str, query: dict[str, list[str]]
    ) -> None:
        if kind == "trickle":
            return self._trickle(h)
        if kind == "huge":
            return self._endless(h)
        if kind == "endless_pages":
            token = int(query.get("page-token", ["0"])[0]) + 1
            return self._json(h, 200, {"items": [], "next_page_token": str(token)})
        return self._page(h, self._pipelines(kind))

    def _page(self, h: BaseHTTPRequestHandler, items: list[dict[str, Any]]) -> None:
        self._json(h, 200, {"items": items, "next_page_token": None})

    @staticmethod
    def _json(
        h: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _trickle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", "100000")
        h.end_headers()
        for _ in range(100000):
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(1.0)

    @staticmethod
    def _endless(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        start, chunk = b'{"items": [', b'{"id": "x"},' * 20000
        h.wfile.write(b"%x\r\n%s\r\n" % (len(start), start))
        while True:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
