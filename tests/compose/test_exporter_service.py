"""The exporter service: demo without a token, the mounted config with one; and its image."""

import os
import re
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import yaml
from compose_files import ROOT, compose, host_path_of, services

from exporter import __version__
from exporter.settings import host_port, load_settings
from tests.conftest import EXPORTER
from tests.rules.binaries import free_port

CONFIG_IN_CONTAINER = "/etc/circleci-exporter/exporter.yml"


def _run_entrypoint(tmp_path: Path, token: str) -> list[str]:
    """Run the service's `sh -c` script with a stand-in circleci-exporter that prints its args
    and whether CIRCLECI_TOKEN_FILE reached it; `token` is the secret file's content."""
    fake = tmp_path / "circleci-exporter"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@" "token_file=${CIRCLECI_TOKEN_FILE:-unset}"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    service = services()["exporter"]
    assert service["entrypoint"] == ["/bin/sh", "-c"]
    # Compose turns `$$` into a literal `$` for the container's shell.
    script = service["command"][0].replace("$$", "$")
    secret = tmp_path / "circleci_token"
    secret.write_text(token)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "CIRCLECI_TOKEN_FILE": str(secret)}
    result = subprocess.run(
        ["/bin/sh", "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.split()


def test_with_an_empty_token_file_the_demo_runs(tmp_path: Path) -> None:
    # The demo needs no token, and an empty token file would be refused: it is not passed on.
    assert _run_entrypoint(tmp_path, "") == ["--demo", "token_file=unset"]


def test_with_a_token_the_mounted_config_is_watched(tmp_path: Path) -> None:
    assert _run_entrypoint(tmp_path, "not-a-real-token") == [
        "--config", CONFIG_IN_CONTAINER, f"token_file={tmp_path / 'circleci_token'}",
    ]  # fmt: skip


def test_the_token_is_a_compose_secret_file_never_an_environment_value() -> None:
    exporter = services()["exporter"]
    environment = exporter["environment"]
    assert "CIRCLECI_TOKEN" not in environment
    assert exporter["secrets"] == ["circleci_token"]
    assert environment["CIRCLECI_TOKEN_FILE"] == "/run/secrets/circleci_token"
    secret = compose()["secrets"]["circleci_token"]["file"]
    # The default is the committed empty file (the demo); tokens go in the git-ignored folder.
    assert secret == "${CIRCLECI_TOKEN_SECRET_FILE:-./compose/no-token}"
    assert (ROOT / "compose" / "no-token").read_text() == ""
    assert "compose/secrets/" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_mounted_sample_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    path = host_path_of("exporter", CONFIG_IN_CONTAINER)
    assert path == ROOT / "compose" / "exporter.yml"
    for name, value in services()["exporter"]["environment"].items():
        if name.startswith("CIRCLECI_EXPORTER_"):
            monkeypatch.setenv(name, value)
    settings = load_settings(path)
    assert [project.slug for project in settings.projects] == ["gh/acme/api", "gh/acme/web"]
    assert settings.projects[0].branches == ["default", "release/*"]
    assert [org.slug for org in settings.orgs] == ["gh/acme"]
    # The port Prometheus scrapes is the one the exporter listens on.
    scrape = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    (target,) = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    assert target == f"exporter:{host_port(settings.web.listen_address)[1]}"


def test_env_example_names_every_variable_the_compose_file_reads() -> None:
    used = set(re.findall(r"\$\{(\w+)", (ROOT / "docker-compose.yml").read_text()))
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^(\w+)=", example, re.MULTILINE))
    # Compose itself reads COMPOSE_PROJECT_NAME (instead of a top-level `name:`, see the file).
    assert used | {"COMPOSE_PROJECT_NAME"} == documented
    # The example holds no token, only the path of the (empty) demo token file.
    assert not re.search(r"^CIRCLECI_TOKEN=", example, re.MULTILINE)
    assert re.search(r"^CIRCLECI_TOKEN_SECRET_FILE=./compose/no-token$", example, re.MULTILINE)


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


def test_dockerfile_healthcheck_follows_the_settings() -> None:
    (check,) = _instructions("HEALTHCHECK")
    assert check.endswith('CMD ["python", "-m", "exporter.healthcheck"]')
    assert "curl" not in check and "wget" not in check


def _stages() -> list[str]:
    return DOCKERFILE.split("\nFROM ")[1:]


def test_dockerfile_builds_the_wheels_in_the_builder_stage_from_the_hashed_lock() -> None:
    build, final = _stages()
    assert build.split()[:3][1:] == ["AS", "build"]  # `FROM <image> AS build`
    # Dependencies first, so that a code change reuses their layer.
    assert build.index("COPY requirements.lock") < build.index("--require-hashes")
    assert build.index("--require-hashes") < build.index("COPY exporter/")
    assert "pip wheel" in build and "pip wheel" not in final
    assert "--require-hashes" in final and "--no-index" in final
    assert "COPY --from=build /wheels" in final


def test_dockerfile_has_oci_labels_and_a_version_build_arg() -> None:
    final = _stages()[-1]
    assert f"ARG VERSION={__version__}" in final
    labels = dict(re.findall(r"(org\.opencontainers\.image\.\w+)=\"([^\"]*)\"", final))
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert labels["org.opencontainers.image.revision"] == "${REVISION}"
    assert {"title", "description", "source", "licenses"} <= {k.rsplit(".", 1)[1] for k in labels}
    # A --build-arg VERSION that is not the code's version fails the build.
    assert (
        'test "$(python -c \'import exporter; print(exporter.__version__)\')" = "${VERSION}"'
        in final
    )


def _locked() -> dict[str, list[str]]:
    """name → hashes of each requirement in requirements.lock."""
    text = (ROOT / "requirements.lock").read_text().replace("\\\n", " ")
    locked = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==\S+\s+(.*)$", line)
        if match:
            locked[match[1].lower().replace("_", "-")] = re.findall(
                r"--hash=sha256:[0-9a-f]{64}", match[2]
            )
    return locked


def test_the_lock_file_pins_every_dependency_with_hashes() -> None:
    locked = _locked()
    assert all(locked.values()), [name for name, hashes in locked.items() if not hashes]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = pyproject["project"]["dependencies"] + pyproject["build-system"]["requires"]
    for requirement in wanted:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement)
        assert name is not None
        assert name[0].lower() in locked, f"{name[0]} is not in requirements.lock"


def test_the_image_health_check_asks_the_configured_port(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "CIRCLECI_EXPORTER_WEB__LISTEN_ADDRESS": f"127.0.0.1:{port}",
    }
    check = [sys.executable, "-m", "exporter.healthcheck"]
    assert subprocess.run(check, env=env, capture_output=True, timeout=30).returncode == 1
    exporter = subprocess.Popen(
        [str(EXPORTER), "--demo"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(check, env=env, capture_output=True, timeout=30).returncode != 0:
            assert exporter.poll() is None and time.monotonic() < deadline
            time.sleep(0.3)
        other = {**env, "CIRCLECI_EXPORTER_WEB__LISTEN_ADDRESS": f"127.0.0.1:{free_port()}"}
        assert subprocess.run(check, env=other, capture_output=True, timeout=30).returncode == 1
    finally:
        exporter.terminate()
        exporter.wait(timeout=15)


def test_dockerignore_lets_the_lock_file_in() -> None:
    assert "!requirements.lock" in (ROOT / ".dockerignore").read_text().splitlines()


@pytest.mark.parametrize("kept_out", [".venv", ".git", ".env", "tests"])
def test_dockerignore_keeps_the_build_context_small(kept_out: str) -> None:
    # The ignore file allow-lists: everything is out except what the image needs.
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in lines
    assert f"!{kept_out}" not in lines and f"!{kept_out}/" not in lines
