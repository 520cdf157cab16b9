"""The exporter service: demo without a token, the mounted config with one; and its image."""

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
from compose_files import ROOT, host_path_of, services

from exporter.settings import load_settings

CONFIG_IN_CONTAINER = "/etc/circleci-exporter/exporter.yml"


def _run_entrypoint(tmp_path: Path, token: str) -> list[str]:
    """Run the service's `sh -c` script with a stand-in circleci-exporter that prints its args."""
    fake = tmp_path / "circleci-exporter"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    service = services()["exporter"]
    assert service["entrypoint"] == ["/bin/sh", "-c"]
    # Compose turns `$$` into a literal `$` for the container's shell.
    script = service["command"][0].replace("$$", "$")
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "CIRCLECI_TOKEN": token}
    result = subprocess.run(
        ["/bin/sh", "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.split()


def test_without_a_token_the_demo_runs(tmp_path: Path) -> None:
    assert _run_entrypoint(tmp_path, "") == ["--demo"]


def test_with_a_token_the_mounted_config_is_watched(tmp_path: Path) -> None:
    assert _run_entrypoint(tmp_path, "not-a-real-token") == ["--config", CONFIG_IN_CONTAINER]


def test_the_token_is_passed_from_the_environment_only() -> None:
    assert services()["exporter"]["environment"] == {"CIRCLECI_TOKEN": "${CIRCLECI_TOKEN:-}"}


def test_the_mounted_sample_config_is_valid() -> None:
    path = host_path_of("exporter", CONFIG_IN_CONTAINER)
    assert path == ROOT / "compose" / "exporter.yml"
    settings = load_settings(path)
    assert [project.slug for project in settings.projects] == ["gh/acme/api", "gh/acme/web"]
    assert settings.projects[0].branches == ["default", "release/*"]
    assert [org.slug for org in settings.orgs] == ["gh/acme"]
    assert settings.web.listen_address == ":10027"


def test_env_example_names_every_variable_the_compose_file_reads() -> None:
    used = set(re.findall(r"\$\{(\w+)", (ROOT / "docker-compose.yml").read_text()))
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^(\w+)=", example, re.MULTILINE))
    assert used == documented
    assert re.search(r"^CIRCLECI_TOKEN=$", example, re.MULTILINE), "the example holds no token"


DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instructions(name: str) -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(f"{name} ")]


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = _instructions("USER")
    assert users, "no USER instruction"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_dockerfile_base_images_are_pinned_slim_python() -> None:
    for base in _instructions("FROM"):
        image = base.split()[0]
        assert re.match(r"^python:3\.11\.\d+-slim", image), image


def test_dockerfile_healthcheck_uses_python_on_healthz() -> None:
    (check,) = _instructions("HEALTHCHECK")
    assert "urllib.request" in check and "/healthz" in check
    assert "curl" not in check and "wget" not in check
    port = re.search(r"127\.0\.0\.1:(\d+)/healthz", check)
    assert port is not None and port[1] == "10027"


@pytest.mark.parametrize("kept_out", [".venv", ".git", ".env", "tests"])
def test_dockerignore_keeps_the_build_context_small(kept_out: str) -> None:
    # The ignore file allow-lists: everything is out except what the image needs.
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in lines
    assert f"!{kept_out}" not in lines and f"!{kept_out}/" not in lines
