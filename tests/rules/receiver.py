"""A local HTTP endpoint recording every JSON POST; stands in for PagerDuty, Slack, webhooks."""

import json
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Notification:
    path: str
    body: dict[str, Any]


class NotificationRecorder:
    """`url` is the base URL; each POST to `<url>/<anything>` becomes a `Notification`."""

    def __init__(self, url: str, received: "queue.Queue[Notification]") -> None:
        self.url = url
        self._received = received

    def next(self, timeout: float = 30.0) -> Notification:
        try:
            return self._received.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no notification arrived within {timeout:.0f}s") from None

    def pending(self) -> list[Notification]:
        """Everything received and not yet taken with `next`."""
        items = []
        while not self._received.empty():
            items.append(self._received.get_nowait())
        return items


@contextmanager
def recording_receiver() -> Iterator[NotificationRecorder]:
    received: queue.Queue[Notification] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.put(Notification(self.path, json.loads(self.rfile.read(length))))
            # PagerDuty's Events API answers 202; Slack and webhooks accept any 2xx.
            self.send_response(202)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output clean: the recorder is asserted on, not read."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield NotificationRecorder(f"http://127.0.0.1:{server.server_port}", received)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
