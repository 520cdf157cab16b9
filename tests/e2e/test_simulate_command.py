"""`circleci-exporter simulate` serves the simulated API on its own, as the README says."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from exporter.simulator import SimConfig, World
from tests.conftest import EXPORTER
from tests.rules.binaries import free_port


@contextmanager
def simulate(*args: str) -> Iterator[str]:
    address = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [str(EXPORTER), "simulate", "--listen", address, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://{address}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                httpx.get(f"{base}/__sim/stats", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "simulate did not start"
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_simulate_serves_the_seeded_world_and_counts_requests() -> None:
    expected = [p.slug for p in World(SimConfig(projects=3, seed=9)).projects]
    with simulate("--projects", "3", "--seed", "9", "--speed", "60") as base:
        for slug in expected:
            project = httpx.get(f"{base}/api/v2/project/{slug}").json()
            assert project["slug"] == slug
        missing = httpx.get(f"{base}/api/v2/project/gh/nobody/nothing")
        assert missing.status_code == 404
        assert missing.json() == {"message": "Project not found."}
        stats = httpx.get(f"{base}/__sim/stats").json()
    assert stats["requests"]["getProjectBySlug"] == 4


def test_simulate_with_a_token_refuses_others() -> None:
    with simulate("--projects", "1", "--token", "right") as base:
        assert httpx.get(f"{base}/api/v2/me", headers={"Circle-Token": "right"}).is_success
        wrong = httpx.get(f"{base}/api/v2/me", headers={"Circle-Token": "wrong"})
    assert wrong.status_code == 401
    assert "message" in wrong.json()


def test_simulate_refuses_a_bad_address_in_one_line() -> None:
    result = subprocess.run(
        [str(EXPORTER), "simulate", "--listen", "nowhere"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "simulate:" in result.stderr
    assert "Traceback" not in result.stderr


def test_simulate_refuses_a_busy_port_in_one_line() -> None:
    with simulate("--projects", "1") as base:
        result = subprocess.run(
            [str(EXPORTER), "simulate", "--listen", base.removeprefix("http://")],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "cannot listen" in result.stderr
