"""Fixtures of the dashboard tests: a real Prometheus from the Debian `prometheus` binary."""

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from dashboard_prometheus import PrometheusServer, free_port, wait_until


@pytest.fixture(scope="module")
def start_prometheus(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[list[str]], PrometheusServer]]:
    """Start Prometheus scraping `targets` (host:port) every second; stopped after the module."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise AssertionError("the prometheus binary is not on PATH (Debian package prometheus)")
    started: list[PrometheusServer] = []

    def start(targets: list[str]) -> PrometheusServer:
        workdir: Path = tmp_path_factory.mktemp("prometheus")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "circleci", "static_configs": [{"targets": targets}]}]
            if targets
            else [],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        with (workdir / "prometheus.log").open("wb") as log:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = PrometheusServer(f"http://127.0.0.1:{port}", process)
        started.append(server)
        wait_until(server.ready, 30, "prometheus to become ready")
        return server

    yield start
    for server in started:
        server.client.close()
        server.process.terminate()
        server.process.wait(timeout=15)
