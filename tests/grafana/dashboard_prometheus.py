"""Helpers of the dashboard tests: the HTTP API of a real Prometheus (started with
tests.rules.binaries, like the rule and alerting tests)."""

from typing import Any

from tests.rules.binaries import Server

# Interval values as Grafana would send them for a short time range over 1s scrapes.
GRAFANA_INTERVALS = {"__rate_interval": "1m", "__interval": "5s", "__range": "5m"}


class PrometheusServer:
    """A running Prometheus; `query` returns the parsed JSON of /api/v1/query, errors included."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.client = server.client()

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
