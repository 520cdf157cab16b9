"""`circleci-exporter simulate` serves the simulated API on its own, as the README says."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from exporter.simulator import SimConfig, World
from tests.conftest import EXPORTER
from tests.rules.binaries import free_port

# The start-up log line that tells the user where to point the exporter, and with which token.
ANNOUNCEMENT = re.compile(r'CIRCLECI_API_URL=([^\s"]+) CIRCLECI_TOKEN=([^\s"]+)')


@dataclass(frozen=True)
class Simulate:
    base: str
    token: str

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", headers={"Circle-Token": token or self.token})


@contextmanager
def simulate(*args: str) -> Iterator[Simulate]:
    """The command running on a free port, once it has printed where and with which token."""
    address = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [str(EXPORTER), "simulate", "--listen", address, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    try:
        output = ""
        while not (found := ANNOUNCEMENT.search(output)):
            line = process.stdout.readline()
            assert line, f"simulate exited before printing its address: {output}"
            output += line
        api_url, token = found.groups()
        assert api_url == f"http://{address}/api"
        yield Simulate(f"http://{address}", token)
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_simulate_serves_the_seeded_world_and_counts_requests() -> None:
    expected = [p.slug for p in World(SimConfig(projects=3, seed=9)).projects]
    with simulate("--projects", "3", "--seed", "9", "--speed", "60") as sim:
        for slug in expected:
            project = sim.get(f"/api/v2/project/{slug}").json()
            assert project["slug"] == slug
        missing = sim.get("/api/v2/project/gh/nobody/nothing")
        assert missing.status_code == 404
        assert missing.json() == {"message": "Project not found."}
        stats = httpx.get(f"{sim.base}/__sim/stats").json()  # no token: loopback is enough
    assert stats["requests"]["getProjectBySlug"] == 4


def test_simulate_makes_up_a_token_and_refuses_requests_without_it() -> None:
    with simulate("--projects", "1") as sim:
        assert sim.token.startswith("CCIPAT_")
        assert sim.get("/api/v2/me").is_success
        refused = [httpx.get(f"{sim.base}/api/v2/me"), sim.get("/api/v2/me", token="wrong")]
    assert [r.status_code for r in refused] == [401, 401]
    assert all(r.json() == {"message": "Invalid token provided."} for r in refused)


def test_simulate_with_a_token_refuses_others() -> None:
    with simulate("--projects", "1", "--token", "right") as sim:
        assert sim.token == "right"
        assert sim.get("/api/v2/me").is_success
        wrong = sim.get("/api/v2/me", token="wrong")
    assert wrong.status_code == 401
    assert wrong.json() == {"message": "Invalid token provided."}


def test_simulate_refuses_a_bad_address_in_one_line() -> None:
    result = subprocess.run(
        [str(EXPORTER), "simulate", "--listen", "nowhere"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "simulate:" in result.stderr
    assert "Traceback" not in result.stderr


def test_simulate_refuses_a_busy_port_in_one_line() -> None:
    with simulate("--projects", "1") as sim:
        result = subprocess.run(
            [str(EXPORTER), "simulate", "--listen", sim.base.removeprefix("http://")],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "cannot listen" in result.stderr


def test_simulate_unfollowed_projects_stay_out_of_the_org_feed() -> None:
    projects = World(SimConfig(projects=6, seed=9)).projects
    unfollowed = {p.slug for p in projects[-2:]}
    org = projects[-1].organization.slug
    with simulate("--projects", "6", "--seed", "9", "--unfollowed", "2") as sim:
        feed = sim.get(f"/api/v2/pipeline?org-slug={org}").json()["items"]
        own = sim.get(f"/api/v2/project/{projects[-1].slug}/pipeline").json()["items"]
        stats = httpx.get(f"{sim.base}/__sim/stats").json()
    assert feed, "the org has followed projects that built"
    assert not {p["project_slug"] for p in feed} & unfollowed
    assert own, "an unfollowed project is still readable on its own"
    assert stats["requests_by_project"] == {projects[-1].slug: 1}
