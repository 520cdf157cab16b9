"""Benchmark: the exporter's CPU time per CircleCI API request, parsing and applying included.

    .venv/bin/python bench/cpu.py [--projects 200 500] [--runs 3] [--quick]

Each measurement is a fresh exporter process (so that nothing is warm or already imported
across variants) next to a simulator in a child process of its own (bench/live.py's), so
only the exporter side is on the clock. The exporter process reads its first full picture
(`--lookback-hours` of history), then runs `--cycles` steady-state cycles of `--interval`
seconds of simulated time, every project's `collect_once` at once, as `LiveCollector.run`
does. CPU is `time.process_time()` of the exporter process around each cycle, divided by the
HTTP requests the cycle sent (counted by the transport, retries included); the table shows
the median over cycles, then the median and range over `--runs` runs.

Variants, in the same run:
- ours: the collector as it is.
- ours without sniffio: the same, with `import sniffio` made to fail, as it did before sniffio
  was a dependency (httpcore then retries the import on every request).
- plain httpx + json.loads: the requests of the last measured cycle sent again, at the same
  concurrency, by a bare `httpx.AsyncClient`, each body decoded with `json.loads` and nothing
  more: the floor of the HTTP stack, without rate limiting, telemetry, validation or state.

The rendering of /metrics is not part of this (issue 19's render-on-change work measures it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from types import ModuleType

import anyio
import httpx
from _common import Row, print_parameters, print_table
from live import T0, SimTime, SimulatorProcess, settings_for

from exporter.components import build_components
from exporter.settings import ApiSettings
from exporter.simulator import SimClock, SimConfig, World

TARGET_MS = 2.0
VARIANTS = ("ours", "ours-without-sniffio")


class _PathFinderWithoutSniffio(MetaPathFinder):
    """The standard path finder, except that it looks for `sniffio` under a name that is not
    installed: the import fails after the same sys.path scan as in an environment without
    the package (the finders before this one run as usual)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == "sniffio" or fullname.startswith("sniffio."):
            fullname = "not_installed_" + fullname
        return PathFinder.find_spec(fullname, path, target)


def hide_sniffio() -> None:
    sys.modules.pop("sniffio", None)
    sys.meta_path[sys.meta_path.index(PathFinder)] = _PathFinderWithoutSniffio()


class RecordingTransport(httpx.AsyncBaseTransport):
    """Counts the requests, and remembers the URLs of the current cycle for the baseline."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport(http2=True)
        self.requests = 0
        self.urls: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        self.urls.append(str(request.url))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class Measurement:
    """One exporter process's result: milliseconds of CPU per request."""

    first_picture_ms: float
    first_picture_requests: int
    steady_ms: list[float]  # one per cycle
    steady_requests: list[int]
    baseline_ms: float


async def measure(args: argparse.Namespace) -> Measurement:
    sim = SimulatorProcess(args.projects, args.seed, 0.0)
    try:
        return await _measure(args, sim)
    finally:
        sim.close()


async def _measure(args: argparse.Namespace, sim: SimulatorProcess) -> Measurement:
    world = World(SimConfig(projects=args.projects, seed=args.seed), SimClock.manual(T0))
    slugs = [project.slug for project in world.projects]
    sim_time = SimTime()
    transport = RecordingTransport()
    parts = build_components(
        settings_for(args, sim, slugs), transport=transport, clock=lambda: sim_time.now
    )
    live = parts.live

    async def one_cycle() -> tuple[float, int]:
        transport.urls.clear()
        before, cpu = transport.requests, time.process_time()
        async with anyio.create_task_group() as tg:
            for collector in live.projects.values():
                tg.start_soon(live.collect_once, collector)
        return time.process_time() - cpu, transport.requests - before

    cpu, requests = await one_cycle()
    first = Measurement(1000 * cpu / requests, requests, [], [], 0.0)
    profiler = start_py_spy(args.profile) if args.profile else None
    for _ in range(args.cycles):
        sim.command("advance", args.interval)
        sim_time.now += args.interval
        cpu, requests = await one_cycle()
        first.steady_ms.append(1000 * cpu / requests)
        first.steady_requests.append(requests)
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(timeout=60)
        print_profile(Path(args.profile))
    first.baseline_ms = await plain_httpx(list(transport.urls), sim.token, args.concurrency)
    await parts.client.aclose()
    return first


async def plain_httpx(urls: list[str], token: str, concurrency: int) -> float:
    """CPU ms per request of a bare httpx client sending `urls` and decoding their JSON."""
    slots = anyio.CapacityLimiter(concurrency)
    async with httpx.AsyncClient(headers={"Circle-Token": token}, http2=True) as http:

        async def get(url: str) -> None:
            async with slots:
                response = await http.get(url)
                json.loads(response.content)

        await get(urls[0])  # the connection, once
        cpu = time.process_time()
        async with anyio.create_task_group() as tg:
            for url in urls:
                tg.start_soon(get, url)
        return 1000 * (time.process_time() - cpu) / len(urls)


def start_py_spy(path: str) -> subprocess.Popen[bytes]:
    """py-spy sampling this process (its steady cycles) into `path`, as collapsed stacks."""
    command = [
        str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(os.getpid()),
        "--format", "raw", "--rate", "250", "--nonblocking", "--output", path,
    ]  # fmt: skip
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached before the first measured cycle
    return spy


# Where a sample's time goes, by the first of these frames found from the top of its stack
# (the request path's stages); the rest is the event loop and task machinery.
STAGES = (
    ("state: apply updates", ("exporter/state/",)),
    ("parse: json.loads + surrogate check + validation", ("_loads (", "pydantic")),
    ("HTTP: httpx/httpcore/h11 send + read body", ("_receive (",)),
    ("rate limiter + deadline + telemetry + logging", ("_attempt (",)),
    ("collector logic (exporter/collect)", ("exporter/collect/",)),
)


def print_profile(path: Path) -> None:
    """py-spy's samples by stage of the request path (inclusive), and by package of the leaf."""
    stages: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        stage = next(
            (name for name, marks in STAGES if any(m in f for f in frames for m in marks)),
            "event loop, tasks, other",
        )
        stages[stage] += int(count)
        leaves[_package(frames[-1])] += int(count)
    total = sum(stages.values())
    for title, counts in (("stage of the request path", stages), ("package of the leaf", leaves)):
        rows = [Row(name, f"{n / total:.1%}") for name, n in counts.most_common(12)]
        print_table(f"py-spy, {total} samples of the steady cycles, by {title}", rows)


def _package(frame: str) -> str:
    """`httpx` of `send (httpx/_client.py:1629)`; `exporter/circleci` of an exporter frame."""
    parts = frame.rpartition("(")[2].partition(":")[0].split("/")
    if parts[0] == "exporter":
        return "/".join(parts[:2])
    return parts[0] if len(parts) > 1 else f"stdlib {parts[0]}"


# -- the orchestrating process ----------------------------------------------------------------


def run_child(args: argparse.Namespace, projects: int, variant: str) -> Measurement:
    command = [
        sys.executable, __file__, "--measure", variant, "--projects", str(projects),
        "--seed", str(args.seed), "--cycles", str(args.cycles),
        "--interval", str(args.interval), "--lookback-hours", str(args.lookback_hours),
        "--concurrency", str(args.concurrency),
    ]  # fmt: skip
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return Measurement(**json.loads(out.strip().splitlines()[-1]))


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ms ({min(values):.2f}-{max(values):.2f})"


def report(args: argparse.Namespace) -> None:
    for projects in args.projects:
        results = {
            variant: [run_child(args, projects, variant) for _ in range(args.runs)]
            for variant in VARIANTS
        }
        ours = results["ours"]
        steady = {v: [statistics.median(m.steady_ms) for m in ms] for v, ms in results.items()}
        rows = [
            Row(
                "requests per steady cycle (median over cycles)",
                f"{statistics.median(ours[0].steady_requests):.0f}; first picture "
                f"{ours[0].first_picture_requests}",
            ),
            Row(
                f"ours, steady state: <= {TARGET_MS:g} ms CPU per request",
                spread(steady["ours"]),
                "ok" if statistics.median(steady["ours"]) <= TARGET_MS else "MISS",
            ),
            Row("ours, first full picture", spread([m.first_picture_ms for m in ours])),
            Row(
                "ours without sniffio, steady state",
                spread(steady["ours-without-sniffio"]),
            ),
            Row(
                "ours without sniffio, first full picture",
                spread([m.first_picture_ms for m in results["ours-without-sniffio"]]),
            ),
            Row(
                "baseline: plain httpx + json.loads, same requests",
                spread([m.baseline_ms for m in ours]),
            ),
        ]
        print_table(
            f"CPU per API request, {projects} projects, {args.cycles} cycles of "
            f"{args.interval:g} s, {args.runs} runs: median (range)",
            rows,
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, nargs="+", default=[200, 500])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="40 projects, one run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cycles", type=int, default=8, help="steady-state cycles")
    parser.add_argument("--interval", type=float, default=10.0, help="polling interval, s")
    parser.add_argument("--lookback-hours", type=float, default=6.0)
    parser.add_argument(
        "--concurrency", type=int, default=ApiSettings().max_concurrency, help="api.max_concurrency"
    )
    parser.add_argument("--measure", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="with --measure: py-spy the steady cycles into FILE and print where the time went",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.projects, args.runs, args.cycles = [40], 1, 4
    # What bench/live.py's settings_for reads: no rate limit to wait for, every branch.
    args.rps, args.burst, args.branches = 10_000.0, 1000, "*"
    return args


def main() -> None:
    args = parse_args()
    if args.measure:
        if args.measure == "ours-without-sniffio":
            hide_sniffio()
        args.projects = args.projects[0]
        print(json.dumps(asdict(anyio.run(measure, args))))
        return
    print_parameters(
        "bench/cpu.py", args, hidden=("measure", "profile", "rps", "burst", "branches")
    )
    report(args)


if __name__ == "__main__":
    main()
