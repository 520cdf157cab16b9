"""The real Prometheus and Alertmanager binaries, for tests.

Tools (`promtool`, `amtool`) run through `run_tool`; servers start with `running_prometheus` /
`running_alertmanager` on a free 127.0.0.1 port with their data in a directory the caller owns
(pytest's `tmp_path`), and stop when the `with` block ends. `prometheus_config_for_test` and
`alertmanager_config_for_test` turn the repository's configurations into ones that point at test
targets and local receivers.
"""

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_CONFIG = REPO_ROOT / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG = REPO_ROOT / "alertmanager" / "alertmanager.yml"

_INSTALL_HINT = (
    "install Debian's prometheus and prometheus-alertmanager packages "
    "(apt-get install prometheus prometheus-alertmanager)"
)
_START_TIMEOUT_SECONDS = 30.0


def find_binary(*names: str) -> str:
    """Path of the first of `names` on PATH; fails the test (never skips) when none is installed."""
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    pytest.fail(f"{' / '.join(names)} not found on PATH: {_INSTALL_HINT}", pytrace=False)


def promtool() -> str:
    return find_binary("promtool")


def amtool() -> str:
    return find_binary("amtool")


def run_tool(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a command-line tool from the repository root and capture its output."""
    return subprocess.run(
        [binary, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll `condition` every 0.2s; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass(frozen=True)
class Server:
    """A running server: `url` is its base URL (http://127.0.0.1:<port>), `log` its output."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0)


@contextmanager
def running_process(
    name: str,
    command: list[str],
    port: int,
    work_dir: Path,
    *,
    ready_path: str = "/-/ready",
    env: Mapping[str, str] | None = None,
    ready_client: httpx.Client | None = None,
) -> Iterator[Server]:
    """`command`, serving on 127.0.0.1:`port`, once `ready_path` answers 200; its output goes
    to `work_dir/<name>.log`. Stopped on exit, killed if it does not stop. `ready_client`: ask
    over HTTPS with this client (its TLS settings) instead of plain HTTP."""
    log = work_dir / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    scheme = "http" if ready_client is None else "https"
    server = Server(url=f"{scheme}://127.0.0.1:{port}", process=process, log=log)
    try:
        _wait_ready(name, server, ready_path, ready_client)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(
    name: str, server: Server, ready_path: str, client: httpx.Client | None = None
) -> None:
    get = httpx.get if client is None else client.get

    def ready() -> bool:
        if server.process.poll() is not None:
            raise AssertionError(
                f"{name} exited with code {server.process.returncode}:\n{server.log.read_text()}"
            )
        try:
            return get(f"{server.url}{ready_path}", timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(ready, f"{name} to be ready at {server.url}{ready_path}", _START_TIMEOUT_SECONDS)


@contextmanager
def running_prometheus(config_file: Path, work_dir: Path) -> Iterator[Server]:
    """Prometheus with `config_file`, its TSDB under `work_dir`, on a free port."""
    port = free_port()
    command = [
        find_binary("prometheus"),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={work_dir / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with running_process("prometheus", command, port, work_dir) as server:
        yield server


@contextmanager
def running_alertmanager(config_file: Path, work_dir: Path) -> Iterator[Server]:
    """Alertmanager with `config_file`, its state under `work_dir`, on a free port, no cluster."""
    port = free_port()
    command = [
        find_binary("alertmanager", "prometheus-alertmanager"),
        f"--config.file={config_file}",
        f"--storage.path={work_dir / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        # Empty disables the gossip cluster, which would otherwise bind 0.0.0.0:9094.
        "--cluster.listen-address=",
    ]
    with running_process("alertmanager", command, port, work_dir) as server:
        yield server


def prometheus_config_for_test(
    out_dir: Path,
    *,
    exporter_targets: list[str],
    alertmanager_targets: list[str],
    interval: str = "1s",
    rule_files: list[Path] | None = None,
    job_name: str | None = None,
) -> Path:
    """The repository's prometheus.yml with test targets, rule files by absolute path (or
    `rule_files` instead), scrape and evaluation every `interval`, and the scrape job renamed to
    `job_name` if given; written to `out_dir`, path returned."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"]["scrape_interval"] = interval
    config["global"]["evaluation_interval"] = interval
    if rule_files is None:
        rule_files = [PROMETHEUS_CONFIG.parent / path for path in config["rule_files"]]
    config["rule_files"] = [str(path) for path in rule_files]
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": alertmanager_targets}]}]
    for scrape in config["scrape_configs"]:
        scrape["scrape_interval"] = interval
        scrape["scrape_timeout"] = interval
        scrape["static_configs"] = [{"targets": exporter_targets}]
        if job_name is not None:
            scrape["job_name"] = job_name
    path = out_dir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def alertmanager_config_for_test(
    out_dir: Path, receiver_url: str, *, group_interval: str | None = None
) -> Path:
    """The repository's alertmanager.yml, sending each receiver's notifications to
    `<receiver_url>/<receiver name>`.

    Secret files are written to `out_dir` (same base names) holding that URL, or a fake
    PagerDuty key, and PagerDuty's events URL points at the receiver too. `group_wait` drops to 1s
    so a test does not wait 30s for the first notification; `group_interval`, when given, replaces
    the minutes a group waits before it sends a change (such as resolved); routes and inhibitions
    are unchanged.
    """
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    config["route"]["group_wait"] = "1s"
    if group_interval is not None:
        config["route"]["group_interval"] = group_interval
    for receiver in config["receivers"]:
        url = f"{receiver_url}/{receiver['name']}"
        for pagerduty in receiver.get("pagerduty_configs", []):
            pagerduty["routing_key_file"] = _secret_file(
                out_dir, pagerduty["routing_key_file"], f"test-routing-key-{receiver['name']}"
            )
            pagerduty["url"] = url
        for slack in receiver.get("slack_configs", []):
            slack["api_url_file"] = _secret_file(out_dir, slack["api_url_file"], url)
        for webhook in receiver.get("webhook_configs", []):
            webhook["url_file"] = _secret_file(out_dir, webhook["url_file"], url)
    path = out_dir / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _secret_file(out_dir: Path, original: str, content: str) -> str:
    path = out_dir / Path(original).name
    path.write_text(content + "\n")
    return str(path)
