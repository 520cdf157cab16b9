"""Helpers of the dashboard tests: a real Prometheus process and its HTTP API."""

import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx

# Interval values as Grafana would send them for a short time range over 1s scrapes.
GRAFANA_INTERVALS = {"__rate_interval": "1m", "__interval": "5s", "__range": "5m"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class PrometheusServer:
    """A running Prometheus; `query` returns the parsed JSON of /api/v1/query, errors included."""

    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.process = process
        self.client = httpx.Client(base_url=url, timeout=10.0)

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited with code {self.process.returncode}")
        try:
            return self.client.get("/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    def query(self, expr: str) -> dict[str, Any]:
        response = self.client.post("/api/v1/query", data={"query": expr})
        body: dict[str, Any] = response.json()
        body["http_status"] = response.status_code
        return body

    def label_values(self, selector: str, label: str) -> list[str]:
        response = self.client.get(f"/api/v1/label/{label}/values", params={"match[]": selector})
        response.raise_for_status()
        values: list[str] = response.json()["data"]
        return values
