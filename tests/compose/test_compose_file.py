"""Structure of docker-compose.yml (there is no Docker engine here, so nothing is started)."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from compose_files import (
    PUBLISHED,
    ROOT,
    compose,
    core_services,
    host_path_of,
    services,
    volume_mounts,
)

from exporter import __version__

IMAGE_TAG = re.compile(r"^[\w./-]+:(v?\d+\.\d+\.\d+[\w.-]*|local)$")


def test_the_four_services() -> None:
    assert set(core_services()) == {"exporter", "prometheus", "alertmanager", "grafana"}


@pytest.mark.parametrize("name", sorted(services()))
def test_image_tags_are_pinned(name: str) -> None:
    image = services()[name]["image"]
    assert IMAGE_TAG.match(image), f"{name}: {image} is not pinned to a version"
    assert not image.endswith(":latest")


def test_grafana_matches_the_foundation_sdk_build() -> None:
    # grafana-foundation-sdk 1769699379!11.6.0 generates dashboards for Grafana 11.6.
    assert services()["grafana"]["image"].startswith("grafana/grafana:11.6.")


@pytest.mark.parametrize("name", sorted(set(core_services()) - {"exporter"}))
def test_service_has_a_healthcheck(name: str) -> None:
    check = services()[name]["healthcheck"]
    assert check["test"][0] == "CMD"
    assert any("http://127.0.0.1:" in part for part in check["test"])


def test_exporter_is_built_here_with_the_version_and_checked_by_its_image() -> None:
    exporter = services()["exporter"]
    assert exporter["build"]["context"] == "."
    assert exporter["build"]["args"]["VERSION"] == __version__
    assert "healthcheck" not in exporter  # the Dockerfile's HEALTHCHECK applies
    assert "HEALTHCHECK" in (ROOT / "Dockerfile").read_text()


def test_no_service_of_the_stack_waits_for_another() -> None:
    # A broken exporter must not keep Prometheus (and so CircleCIExporterDown) down; Prometheus
    # and Alertmanager retry their targets, Grafana queries only when a dashboard is opened.
    for name, service in core_services().items():
        assert "depends_on" not in service, name


@pytest.mark.parametrize("name", sorted(services()))
def test_every_service_is_hardened(name: str) -> None:
    service = services()[name]
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert service["security_opt"] == ["no-new-privileges:true"]
    if name in core_services():
        assert service["restart"] == "unless-stopped"


def test_the_file_runs_on_compose_v1_and_says_which_version_it_needs() -> None:
    # Debian's docker-compose 1.29 rejects a top-level `name:`.
    assert "name" not in compose()
    header = (ROOT / "docker-compose.yml").read_text().split("\nservices:", 1)[0]
    assert "Docker Compose v2" in header and "v1.29" in header


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    binary = shutil.which("docker-compose")
    assert binary is not None, "docker-compose is not on PATH (.ci/run installs Debian's)"
    result = subprocess.run(
        [binary, "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml"),
         "config"],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) == set(services())
    assert resolved["secrets"]["circleci_token"]["file"] == str(ROOT / "compose" / "no-token")


@pytest.mark.parametrize("name", ["prometheus", "alertmanager", "grafana"])
def test_data_lives_in_named_volumes(name: str) -> None:
    declared = set(compose()["volumes"])
    named = {source for source, _ in volume_mounts(name)} & declared
    assert named, f"{name} keeps its data in no named volume"


def test_declared_volumes_are_used() -> None:
    used = {source for name in services() for source, _ in volume_mounts(name)}
    assert set(compose()["volumes"]) <= used


def test_only_the_three_uis_are_published_and_only_on_loopback() -> None:
    published = {name: s["ports"] for name, s in services().items() if "ports" in s}
    assert set(published) == set(PUBLISHED)
    for name, ports in published.items():
        assert ports == [f"127.0.0.1:{PUBLISHED[name]}:{PUBLISHED[name]}"]


def test_no_secret_values_in_the_file() -> None:
    for name, service in services().items():
        for key, value in service.get("environment", {}).items():
            if key.endswith("_FILE"):
                assert str(value).startswith("/run/secrets/"), f"{name}: {key}"
            elif re.search(r"TOKEN|PASSWORD|SECRET|KEY", key):
                assert str(value).startswith("${"), f"{name}: {key} must come from .env"
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"CCIPAT_|\b[0-9a-f]{40}\b", text)


def test_grafana_home_dashboard_and_provisioning_exist() -> None:
    env = services()["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    home = host_path_of("grafana", env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert home == ROOT / "grafana" / "dashboards" / "circleci-overview.json"
    assert home.is_file()
    assert host_path_of("grafana", "/etc/grafana/provisioning/datasources").is_dir()


@pytest.mark.parametrize("folder", ["dashboards", "datasources", "alerting", "plugins"])
def test_every_grafana_provisioning_folder_exists_with_a_valid_file(folder: str) -> None:
    # Grafana logs an error at start for each provisioning folder it cannot read.
    directory = host_path_of("grafana", f"/etc/grafana/provisioning/{folder}")
    files = sorted(directory.glob("*.yml"))
    assert files, f"{directory} has no provisioning file"
    for path in files:
        assert yaml.safe_load(path.read_text())["apiVersion"] == 1


def test_prometheus_and_alertmanager_configs_are_mounted_from_the_repository() -> None:
    assert host_path_of("prometheus", "/etc/prometheus/prometheus.yml") == (
        ROOT / "prometheus" / "prometheus.yml"
    )
    assert host_path_of("alertmanager", "/etc/alertmanager/alertmanager.yml") == (
        ROOT / "alertmanager" / "alertmanager.yml"
    )
