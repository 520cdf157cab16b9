"""End to end: a hostile client of the public webhook listener (issue 12, items 1 and 10):
slow uploads by the hundred, JSON nested too deep, and lone surrogates in a signed event."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import httpx

from tests.hostile.fake_circleci import slug_of
from tests.hostile.harness import WEBHOOK_SECRET, Exporter, assert_survived, exporter_against
from tests.rules.binaries import wait_until

SLOW_UPLOADS = 300
MAX_CONNECTIONS = 20


def _post(exporter: Exporter, body: bytes) -> httpx.Response:
    assert exporter.webhook_url is not None
    digest = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"circleci-signature": f"v1={digest}", "circleci-event-type": "workflow-completed",
               "content-type": "application/json"}  # fmt: skip
    return httpx.post(exporter.webhook_url, content=body, headers=headers, timeout=10)


def _event(workflow: str, branch: str) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "id": "ev-1", "type": "workflow-completed", "happened_at": now,
        "project": {"id": "id-surrogates", "name": "surrogates",
                    "slug": "github/ocean/surrogates"},
        "organization": {"id": "o", "name": "ocean"},
        "workflow": {"id": "wf-hook", "name": workflow, "created_at": now, "stopped_at": now,
                     "url": "https://app.circleci.com/x", "status": "failed"},
        "pipeline": {"id": "p-hook", "number": 9, "created_at": now,
                     "trigger": {"type": "webhook"}, "vcs": {"branch": branch}},
    }  # fmt: skip


def _open_fds(exporter: Exporter) -> int:
    return len(os.listdir(f"/proc/{exporter.process.pid}/fd"))


def test_slow_uploads_nested_json_and_surrogates_at_the_webhook_listener(
    tmp_path: Path,
) -> None:
    with exporter_against(
        ("surrogates",),
        tmp_path,
        webhooks=True,
        webhooks_limits={"max_connections": MAX_CONNECTIONS, "body_timeout": "2s"},
    ) as exporter:
        assert exporter.webhook_url is not None
        wait_until(
            lambda: exporter.value("circleci_up", project=slug_of("surrogates")) == 1,
            "the surrogates project up",
            15,
        )
        port = int(exporter.webhook_url.split(":")[2].split("/")[0])
        uploads = []
        for _ in range(SLOW_UPLOADS):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(
                b"POST /webhooks/circleci HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                b"circleci-event-type: workflow-completed\r\n\r\n{"
            )
            uploads.append(sock)
        try:
            # While they hang, the process keeps serving and collecting.
            assert_survived(exporter)
            events = "circleci_exporter_webhook_events_total"
            wait_until(
                lambda: (exporter.value(events, event="other", outcome="overloaded") or 0) > 0,
                "uploads past the connection cap to be refused",
                10,
            )
            wait_until(
                lambda: (
                    (exporter.value(events, event="workflow-completed", outcome="timeout") or 0)
                    >= MAX_CONNECTIONS
                ),
                "slow uploads to time out",
                10,
            )
            # Refused and timed-out uploads give their descriptors back while the clients
            # still hold their ends open.
            wait_until(
                lambda: _open_fds(exporter) < 100, "the uploads' descriptors to be freed", 10
            )
        finally:
            for sock in uploads:
                sock.close()

        nested = b'{"type": "workflow-completed", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        assert _post(exporter, nested).status_code == 400

        hostile_event = _event("deploy\ud800", "main\ud800")
        response = _post(exporter, json.dumps(hostile_event).encode())
        assert (response.status_code, response.text) == (200, "applied\n")
        wait_until(lambda: "deploy\ufffd" in exporter.get("/metrics").text, "the event", 10)
        assert_survived(exporter)
