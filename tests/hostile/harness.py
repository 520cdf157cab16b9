"""Runs the installed `circleci-exporter` against the fake CircleCI and checks what every
hostile-peer test asserts: the process is alive, /metrics passes `promtool check metrics`
with no finding, the healthy project stays fresh, RSS stays under a bound, and the token is
in no log line and on no page."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import EXPORTER
from tests.hostile.fake_circleci import HEALTHY, FakeCircleCI, slug_of
from tests.rules.binaries import free_port, promtool, running_process, wait_until

TOKEN = "CCIPAT_hostile-suite-0123456789abcdef"
WEBHOOK_SECRET = "hostile-suite-webhook-secret"
# What a healthy exporter of two projects needs is ~80 MB; a body or page loop held in
# memory would blow far past this.
RSS_BOUND_BYTES = 250 * 1024 * 1024
# Short limits, so that each test sees them hit within seconds.
LIMITS: dict[str, Any] = {
    "requests_per_second": 200,
    "burst": 50,
    "timeout": "2s",
    "max_retries": 1,
    "max_response_bytes": 1024 * 1024,
    "max_pages": 5,
    "max_rate_limit_wait": "2s",
}


@dataclass
class Exporter:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    fake: FakeCircleCI
    webhook_url: str | None = None

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=10.0)

    def samples(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Every sample of `name` on /metrics, keyed by its sorted labels."""
        found = {}
        for family in text_string_to_metric_families(self.get("/metrics").text):
            for sample in family.samples:
                if sample.name == name:
                    found[tuple(sorted(sample.labels.items()))] = sample.value
        return found

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples(name).get(tuple(sorted(labels.items())))

    def last_success(self, project: str) -> float | None:
        return self.value(
            "circleci_exporter_last_success_timestamp_seconds", project=project, collector="live"
        )

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")


@contextmanager
def exporter_against(
    behaviours: tuple[str, ...],
    tmp_path: Path,
    *,
    webhooks: bool = False,
    **sections: dict[str, Any],
) -> Iterator[Exporter]:
    """The exporter watching the healthy project of a fake CircleCI and one hostile project
    per behaviour, each misbehaving its own way. The token comes with a trailing newline, as
    a Kubernetes Secret passed as an environment variable often has it. `webhooks`: with a
    webhook listener of its own (`Exporter.webhook_url`)."""
    webhook_port = free_port() if webhooks else None
    limits = sections.pop("webhooks_limits", {})
    if webhook_port is not None:
        sections["webhooks"] = {"listen_address": f"127.0.0.1:{webhook_port}", **limits}
    config = {
        "projects": [{"slug": slug_of(name)} for name in (HEALTHY, *behaviours)],
        "collect": {"interval": "1s", "max_pipeline_pages": 5, **sections.pop("collect", {})},
        "insights": {"enabled": False},
        "api": {**LIMITS, **sections.pop("api", {})},
        **sections,
    }
    config_file = tmp_path / "exporter.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    with FakeCircleCI(behaviours, TOKEN) as fake:
        env = {"CIRCLECI_TOKEN": f"{TOKEN}\n", "CIRCLECI_API_URL": fake.api_url,
               "CIRCLECI_WEBHOOK_SECRET": WEBHOOK_SECRET, "PATH": "/usr/bin:/bin"}  # fmt: skip
        command = [str(EXPORTER), "--config", str(config_file),
                   "--web.listen-address", f"127.0.0.1:{port}"]  # fmt: skip
        with running_process(
            "exporter", command, port, tmp_path, ready_path="/healthz", env=env
        ) as server:
            webhook_url = f"http://127.0.0.1:{webhook_port}/webhooks/circleci"
            yield Exporter(server.url, server.process, server.log, fake,
                           webhook_url if webhook_port else None)  # fmt: skip


def assert_survived(exporter: Exporter) -> None:
    """The five promises of the hostile-peer suite."""
    assert exporter.process.poll() is None, exporter.log.read_text()
    _assert_healthy_project_fresh(exporter)
    metrics = exporter.get("/metrics")
    assert metrics.status_code == 200
    check = subprocess.run(
        [promtool(), "check", "metrics"], input=metrics.content, capture_output=True, timeout=60
    )
    assert check.returncode == 0 and not check.stdout and not check.stderr, check
    assert exporter.rss_bytes() < RSS_BOUND_BYTES, exporter.rss_bytes()
    _assert_token_nowhere(exporter)
    assert exporter.process.poll() is None, exporter.log.read_text()


def _assert_healthy_project_fresh(exporter: Exporter) -> None:
    wait_until(
        lambda: exporter.last_success(slug_of(HEALTHY)) is not None, "a first healthy cycle", 15
    )
    first = exporter.last_success(slug_of(HEALTHY))
    assert first is not None
    wait_until(
        lambda: (exporter.last_success(slug_of(HEALTHY)) or 0) > first,
        "the healthy project to advance",
        8,
    )
    assert time.time() - (exporter.last_success(slug_of(HEALTHY)) or 0) < 8


def _assert_token_nowhere(exporter: Exporter) -> None:
    spellings = {TOKEN, quote(TOKEN, safe=""), TOKEN[8:]}
    pages = {path: exporter.get(path).text for path in ("/", "/metrics", "/healthz", "/readyz")}
    pages["log"] = exporter.log.read_text(errors="replace")
    for where, text in pages.items():
        for spelling in spellings:
            assert spelling not in text, f"the token appears in {where}"
