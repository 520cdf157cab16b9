"""The Prometheus, Alertmanager and Grafana files the stack mounts are valid and agree."""

import shutil
import subprocess

import yaml
from compose_files import ROOT, host_path_of, services


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which(tool)
    assert binary is not None, f"{tool} is not on PATH"
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False)


def test_prometheus_config_passes_promtool() -> None:
    config = host_path_of("prometheus", "/etc/prometheus/prometheus.yml")
    result = _run("promtool", "check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_the_exporter_and_alerts_the_alertmanager() -> None:
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    assert "exporter:10027" in targets
    alertmanagers = {
        target
        for manager in config["alerting"]["alertmanagers"]
        for static in manager["static_configs"]
        for target in static["targets"]
    }
    assert alertmanagers == {"alertmanager:9093"}
    assert {"exporter", "alertmanager"} <= set(services())


def test_alertmanager_config_passes_amtool() -> None:
    config = host_path_of("alertmanager", "/etc/alertmanager/alertmanager.yml")
    result = _run("amtool", "check-config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_datasources_point_at_the_compose_services() -> None:
    provisioning = host_path_of("grafana", "/etc/grafana/provisioning")
    sources = yaml.safe_load((provisioning / "datasources" / "datasources.yml").read_text())
    by_type = {source["type"]: source for source in sources["datasources"]}
    prometheus = by_type["prometheus"]
    assert prometheus["uid"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"
    assert prometheus["isDefault"] is True
    alertmanager = by_type["alertmanager"]
    assert alertmanager["url"] == "http://alertmanager:9093"
    assert alertmanager["jsonData"]["implementation"] == "prometheus"
    # $__rate_interval is built from this; it must be the interval Prometheus really scrapes at.
    scrape = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())["global"]
    assert prometheus["jsonData"]["timeInterval"] == scrape["scrape_interval"]


def test_grafana_loads_the_generated_dashboards_into_the_circleci_folder() -> None:
    provisioning = host_path_of("grafana", "/etc/grafana/provisioning")
    providers = yaml.safe_load((provisioning / "dashboards" / "circleci.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["folder"] == "CircleCI"
    assert provider["type"] == "file"
    dashboards_dir = host_path_of("grafana", provider["options"]["path"])
    assert dashboards_dir == ROOT / "grafana" / "dashboards"
    assert len(list(dashboards_dir.glob("*.json"))) == 4
