"""Fixtures of the dashboard tests: a real Prometheus from the Debian `prometheus` binary."""

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml

from tests.grafana.dashboard_prometheus import PrometheusServer
from tests.rules.binaries import PROMETHEUS_CONFIG, running_prometheus


@pytest.fixture(scope="module")
def start_prometheus(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[list[str]], PrometheusServer]]:
    """Start Prometheus scraping `targets` (host:port) every second; stopped after the module."""
    with ExitStack() as stack:

        def start(targets: list[str]) -> PrometheusServer:
            workdir: Path = tmp_path_factory.mktemp("prometheus")
            # The shipped scrape job (its name and honor_labels), pointed at the test targets.
            shipped = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"][0]
            scrape = [
                {
                    "job_name": shipped["job_name"],
                    "honor_labels": shipped["honor_labels"],
                    "static_configs": [{"targets": targets}],
                }
            ]
            config = {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": scrape if targets else [],
            }
            (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
            server = stack.enter_context(running_prometheus(workdir / "prometheus.yml", workdir))
            prometheus = PrometheusServer(server)
            stack.callback(prometheus.client.close)
            return prometheus

        yield start
