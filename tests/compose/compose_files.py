"""Paths and parsed contents of the compose stack's files, shared by the compose tests."""

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = {"grafana": "3000", "prometheus": "9090", "alertmanager": "9093"}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def core_services() -> dict[str, dict[str, Any]]:
    """The services `docker compose up` starts: those under no profile (one-shot jobs such as
    the backfill have one)."""
    return {name: s for name, s in services().items() if not s.get("profiles")}


_VOLUME = re.compile(r"^(?P<source>\$\{[^}]*\}|[^:]+):(?P<target>[^:]+)")
_DEFAULTED = re.compile(r"^\$\{\w+:-(?P<default>[^}]*)\}$")


def volume_mounts(service: str) -> list[tuple[str, str]]:
    """(source, target) of each volume; `${VAR:-default}` sources resolve to the default."""
    mounts = []
    for spec in services()[service].get("volumes", []):
        match = _VOLUME.match(spec)
        assert match is not None, f"{service}: cannot parse volume {spec!r}"
        source = match["source"]
        defaulted = _DEFAULTED.match(source)
        mounts.append((defaulted["default"] if defaulted else source, match["target"]))
    return mounts


def host_path_of(service: str, container_path: str) -> Path:
    """The repository path a service mounts at `container_path` (or under it)."""
    for source, target in volume_mounts(service):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return (ROOT / source / container_path.removeprefix(target).lstrip("/")).resolve()
    raise AssertionError(f"{service} mounts nothing at {container_path}")
