"""How many requests per second the simulated CircleCI serves on one core.

The simulator (`circleci-exporter simulate`) runs pinned to CPU 0; `wrk` (Debian package wrk)
loads it from CPU 1 with 16 connections for `--seconds` per endpoint. The baseline, in the same
run, is the framework's floor: the same uvicorn + Starlette stack answering each endpoint's
recorded body as a constant, so the table shows what the simulated world itself costs.

    .venv/bin/python bench/simulator.py [--seconds 5] [--projects 20]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Row, print_parameters, print_table, verdict

EXPORTER = Path(sys.executable).parent / "circleci-exporter"
TARGET = 1000.0  # "thousands of requests per second on one core" (issue: simulator)

# A static server answering every path with the body recorded for it.
_FLOOR_APP = """
import json, sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
bodies = json.load(open(sys.argv[1]))
async def app(scope, receive, send):
    body = bodies[scope["path"]].encode()
    await Response(body, media_type="application/json")(scope, receive, send)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpu: int) -> list[str]:
    """Run on one CPU when taskset exists (and the machine has more than one)."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu)]
    return []


@contextmanager
def serving(command: list[str], port: int) -> Iterator[str]:
    process = subprocess.Popen(
        [*pinned(0), *command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"server did not start: {command}") from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)


def endpoints(base: str) -> dict[str, str]:
    """One path per kind of endpoint the exporter reads, with real ids from the world: a job
    that reported tests, so that getTests serves a real page."""
    feed = httpx.get(f"{base}/api/v2/pipeline", params={"org-slug": "gh/ocean-labs"}).json()
    for pipeline in (p for p in feed["items"] if p["state"] == "created"):
        slug, pipeline_id = pipeline["project_slug"], pipeline["id"]
        workflows = httpx.get(f"{base}/api/v2/pipeline/{pipeline_id}/workflow").json()
        for workflow in workflows["items"]:
            jobs = httpx.get(f"{base}/api/v2/workflow/{workflow['id']}/job").json()["items"]
            for number in (j["job_number"] for j in jobs if j.get("job_number")):
                if httpx.get(f"{base}/api/v2/project/{slug}/{number}/tests").json()["items"]:
                    return {
                        "getCurrentUser": "/api/v2/me",
                        "getProjectBySlug": f"/api/v2/project/{slug}",
                        "listPipelinesForProject": f"/api/v2/project/{slug}/pipeline",
                        "listWorkflowsByPipelineId": f"/api/v2/pipeline/{pipeline_id}/workflow",
                        "listWorkflowJobs": f"/api/v2/workflow/{workflow['id']}/job",
                        "getJobDetails": f"/api/v2/project/{slug}/job/{number}",
                        "getTests": f"/api/v2/project/{slug}/{number}/tests",
                        "getProjectWorkflowMetrics": f"/api/v2/insights/{slug}/workflows",
                        "getOrgSummaryData": "/api/v2/insights/gh/ocean-labs/summary",
                    }
    raise SystemExit("no job with test results in the org feed")


def requests_per_second(url: str, seconds: int) -> float:
    result = subprocess.run(
        [*pinned(1), "wrk", "-t1", "-c16", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if match is None or "Non-2xx" in result.stdout:
        raise SystemExit(f"wrk failed for {url}:\n{result.stdout}{result.stderr}")
    return float(match[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per endpoint")
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk: apt-get install wrk")
    print_parameters("bench/simulator.py", args)

    port = free_port()
    simulate = [str(EXPORTER), "simulate", "--listen", f"127.0.0.1:{port}",
                "--projects", str(args.projects), "--seed", str(args.seed)]  # fmt: skip
    with serving(simulate, port) as base:
        paths = endpoints(base)
        bodies = {path: httpx.get(base + path).text for path in paths.values()}
        requests_per_second(base + paths["getCurrentUser"], 1)  # warm up: the first syncs
        ours = {
            name: requests_per_second(base + path, args.seconds) for name, path in paths.items()
        }

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as recorded:
        json.dump({**bodies, "/": "{}"}, recorded)
    floor_port = free_port()
    floor_command = [sys.executable, "-c", _FLOOR_APP, recorded.name, str(floor_port)]
    with serving(floor_command, floor_port) as base:
        floor = {
            name: requests_per_second(base + path, args.seconds) for name, path in paths.items()
        }
    os.unlink(recorded.name)

    rows = [
        Row(
            f"{name} ({len(bodies[path]) / 1024:.1f} KiB): >= {TARGET:.0f} req/s",
            f"{ours[name]:,.0f} req/s (constant body: {floor[name]:,.0f}, "
            f"{ours[name] / floor[name]:.0%} of it)",
            verdict(ours[name] >= TARGET),
        )
        for name, path in paths.items()
    ]
    print_table(f"simulator on one core, {args.projects} projects, wrk -c16", rows)


if __name__ == "__main__":
    main()
