"""Structure of docker-compose.yml (there is no Docker engine here, so nothing is started)."""

import re

import pytest
from compose_files import (
    PUBLISHED,
    ROOT,
    compose,
    core_services,
    host_path_of,
    services,
    volume_mounts,
)

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


def test_exporter_is_built_here_and_checked_by_its_image() -> None:
    exporter = services()["exporter"]
    assert exporter["build"] == "."
    assert "healthcheck" not in exporter  # the Dockerfile's HEALTHCHECK applies
    assert "HEALTHCHECK" in (ROOT / "Dockerfile").read_text()


@pytest.mark.parametrize(
    ("name", "needs"),
    [("prometheus", {"exporter", "alertmanager"}), ("grafana", {"prometheus", "alertmanager"})],
)
def test_services_wait_for_healthy_dependencies(name: str, needs: set[str]) -> None:
    depends_on = services()[name]["depends_on"]
    assert set(depends_on) == needs
    assert all(dep["condition"] == "service_healthy" for dep in depends_on.values())


def test_every_dependency_waits_for_health() -> None:
    for name, service in core_services().items():
        for dep, rule in service.get("depends_on", {}).items():
            assert rule == {"condition": "service_healthy"}, f"{name} → {dep}"


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
            if re.search(r"TOKEN|PASSWORD|SECRET|KEY", key):
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


def test_prometheus_and_alertmanager_configs_are_mounted_from_the_repository() -> None:
    assert host_path_of("prometheus", "/etc/prometheus/prometheus.yml") == (
        ROOT / "prometheus" / "prometheus.yml"
    )
    assert host_path_of("alertmanager", "/etc/alertmanager/alertmanager.yml") == (
        ROOT / "alertmanager" / "alertmanager.yml"
    )
