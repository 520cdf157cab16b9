"""Benchmark of what an organisation at rest costs as it grows: API requests per cycle, CPU
and memory against project count, the cold start, and three shards against one process.

    .venv/bin/python bench/scale.py [--projects 10,50,200,500,2000] [--quick]

Every project is quiet (`SimConfig.active=()`: history only, every run finished), polled every
`--interval` (30 s) with `collect.project_refresh` `--project-refresh` (10 min). Each point runs
with `collect.org_feed: true` and with `org_feed: false` (one request per project per cycle,
the behaviour before the org feed), in the same run.

- The simulator runs in a child process; each exporter runs in a child process of its own, so
  CPU seconds and RSS are the exporter's alone. The exporter is the real `LiveCollector.run`
  (plus the publisher and stale-series expiry) built by `build_components`, with Insights and
  schedule reads off: they have their own intervals and are not what this issue changes.
- Time is simulated (bench/_virtual_time.py): the exporter's loop skips every wait in which
  nothing is in flight, and each request tells the simulator's manual clock the exporter's
  "now" (header `x-bench-now`), so twenty 30 s cycles run in seconds of wall time.
- Requests are counted at the exporter's transport, per kind (org feed, project pipeline lists,
  other), and checked against the simulator's own count (`/__sim/stats`).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import math
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
from _common import Row, peak_rss_mb, print_parameters, print_table, rss_mb, verdict
from _virtual_time import VirtualTimeLoop

from exporter.circleci.client import KEEPALIVE_EXPIRY_SECONDS
from exporter.components import build_components
from exporter.settings import ApiSettings, CollectSettings, Settings, load_settings
from exporter.simulator import RunningSimulator, SimClock, SimConfig

BENCH = Path(__file__).resolve().parent
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # the world's start: its history lies before it
# The exporters start this long after T0, when every run of the quiet world has finished (the
# longest pipeline, created to last workflow stopped, spans about 1.7 h at seed 1).
SETTLE = timedelta(hours=2)
NOW_HEADER = "x-bench-now"
# `collect.org_feed` and `collect.project_refresh` (issue 15): without them only the baseline runs.
FEED = {"org_feed", "project_refresh"} <= CollectSettings.model_fields.keys()
# The `sharding` section (issue 15): without it the three-shard run is left out.
SHARDING = "sharding" in Settings.model_fields


# -- the simulator, in a child process ------------------------------------------------------


class ClockFromHeader:
    """ASGI middleware: moves the simulator's manual clock to the exporter's `x-bench-now`
    (never back: requests of concurrent shards arrive in any order)."""

    def __init__(self, app: Any, clock: SimClock) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == NOW_HEADER.encode():
                    when = datetime.fromtimestamp(float(value), UTC)
                    if when > self.clock.now():
                        self.clock.set(when)
        await self.app(scope, receive, send)


async def _serve_simulator(projects: int, seed: int, history_hours: float) -> None:
    """Child process: serve a quiet world; print where, and the GitHub org's project slugs;
    serve until stdin closes."""
    clock = SimClock.manual(T0)
    config = SimConfig(
        projects=projects, seed=seed, history=timedelta(hours=history_hours), active=()
    )
    sim = RunningSimulator(config, clock=clock)
    sim.app = ClockFromHeader(sim.app, clock)  # before __aenter__, which serves `sim.app`
    async with sim:
        org = sim.world.organizations[0]  # GitHub: three projects in five
        info = {
            "api_url": sim.api_url,
            "token": sim.token,
            "stats_url": f"{sim.base_url}/__sim/stats",
            "org": org.slug,
            "slugs": [p.slug for p in sim.world.projects_of(org.slug)],
        }
        print(json.dumps(info), flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)


class SimulatorProcess:
    """A simulator child whose GitHub org holds at least `org_projects` projects."""

    def __init__(self, org_projects: int, seed: int, history_hours: float) -> None:
        # Projects i with i % 5 in (0, 1, 2) belong to the GitHub org (simulator/catalog.py).
        projects = math.ceil(org_projects / 3) * 5
        self._proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-simulator", "--seed", str(seed),
             "--history-hours", str(history_hours), "--projects", str(projects)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the simulator process exited before answering")
        info = json.loads(line)
        self.api_url: str = info["api_url"]
        self.token: str = info["token"]
        self.stats_url: str = info["stats_url"]
        self.org: str = info["org"]
        self.slugs: list[str] = info["slugs"][:org_projects]

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(timeout=60)

    def settings(
        self,
        args: argparse.Namespace,
        *,
        feed: bool | None,
        lookback_hours: float,
        rate: float,
        burst: int,
        concurrency: int,
        collect: dict[str, Any] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """The exporter's settings: every project of the simulator, Insights off."""
        collect = {"interval": args.interval, "lookback": lookback_hours * 3600, **(collect or {})}
        if feed is not None:
            collect |= {"org_feed": feed, "project_refresh": args.project_refresh}
        return {
            "api": {
                "url": self.api_url,
                "token": self.token,
                "requests_per_second": rate,
                "burst": burst,
                "max_concurrency": concurrency,
                # The simulator shares a loaded machine: a slow answer is not an outage.
                "timeout": 300,
            },
            "projects": [{"slug": slug} for slug in self.slugs],
            "collect": collect,
            "insights": {"enabled": False},
            **extra,
        }


# -- the exporter, in a child process --------------------------------------------------------


def request_kind(url: httpx.URL) -> str:
    path = url.path
    if path.endswith("/v2/pipeline"):
        return "feed"
    if re.search(r"/v2/project/.+/pipeline(/mine)?$", path):
        return "lists"
    return "other"


class _Settling(httpx.AsyncByteStream):
    """A response body that reports when it is closed: until then the request is in flight."""

    def __init__(self, stream: httpx.AsyncByteStream, done: Callable[[], None]) -> None:
        self._stream = stream
        self._done: Callable[[], None] | None = done

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._done is not None:
                self._done()
                self._done = None


class CountingTransport(httpx.AsyncBaseTransport):
    """Counts every request (retries included) by kind and virtual time, tells the simulator
    the exporter's now, adds a simulated latency, and knows what is in flight."""

    def __init__(self, now: Callable[[], float], latency: float) -> None:
        # As the client configures its own transport (exporter/circleci/client.py).
        self._inner = httpx.AsyncHTTPTransport(
            http2=True, limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS)
        )
        self._now = now
        self._latency = latency
        self.in_flight = 0
        self.sent: list[tuple[float, str]] = []  # (anyio.current_time(), kind)

    def _settled(self) -> None:
        self.in_flight -= 1

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._latency:
            await anyio.sleep(self._latency)  # on the virtual clock: costs no wall time
        request.headers[NOW_HEADER] = f"{self._now():.3f}"
        self.sent.append((anyio.current_time(), request_kind(request.url)))
        self.in_flight += 1
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            self._settled()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Settling(response.stream, self._settled),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class ColdStart:
    seconds: float  # virtual: until every project finished its first cycle
    requests: int
    cpu: float
    wall: float
    down: int  # projects whose first cycle failed


@dataclass
class Window:
    cycles: int
    requests: int
    by_kind: dict[str, int]
    per_cycle: list[int]
    cpu: float  # scaled to the nominal window when the loop woke `late`
    wall: float
    late: float  # actual / nominal length of the window (> 1: the loop was saturated)
    simulator_requests: int  # the simulator's count over the window and after (all clients)


@dataclass
class RunResult:
    label: str
    projects: int  # tracked by this process
    cold: ColdStart
    window: Window
    rss_mb: float
    peak_rss_mb: float


def simulator_requests(stats_url: str) -> int:
    """The simulator's request count; -1 when it cannot answer (starved of CPU)."""
    try:
        return int(httpx.get(stats_url, timeout=120).json()["requests_total"])
    except httpx.HTTPError:
        return -1


async def _run_exporter(spec: dict[str, Any]) -> RunResult:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    threads = anyio.to_thread.current_default_thread_limiter()
    started = loop.time()
    epoch = float(spec["epoch"])

    def clock() -> float:
        return epoch + loop.time() - started

    transport = CountingTransport(clock, float(spec["latency"]))
    loop.is_busy = lambda: transport.in_flight > 0 or threads.borrowed_tokens > 0
    settings = load_settings(None, spec["settings"])
    interval = settings.collect.interval
    parts = build_components(settings, transport=transport, clock=clock)
    cpu, wall = time.process_time(), time.perf_counter()
    async with parts, anyio.create_task_group() as tg:
        tg.start_soon(parts.live.run)
        tg.start_soon(parts.publisher.run)
        tg.start_soon(parts.expiry.run)
        while not parts.live.ready:  # noqa: ASYNC110 - LiveCollector offers only this flag
            await anyio.sleep(0.1)
        collections = parts.state.snapshot(clock()).collections.values()
        cold = ColdStart(
            seconds=loop.time() - started,
            requests=len(transport.sent),
            cpu=time.process_time() - cpu,
            wall=time.perf_counter() - wall,
            down=sum(not row.up for row in collections),
        )
        await anyio.sleep(spec["warmup_cycles"] * interval)
        first, window_start = len(transport.sent), anyio.current_time()
        sim_before = simulator_requests(spec["stats_url"])
        profiler = cProfile.Profile() if spec.get("profile") else None
        if profiler is not None:
            profiler.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        cycles = int(spec["cycles"])
        await anyio.sleep(cycles * interval)
        # A saturated loop wakes late: scale the CPU to the nominal window, count its requests.
        late = (anyio.current_time() - window_start) / (cycles * interval)
        cpu, wall = (time.process_time() - cpu) / late, time.perf_counter() - wall
        window_end = window_start + cycles * interval
        sent = [(at, kind) for at, kind in transport.sent[first:] if at < window_end]
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(spec["profile"])
        sim_count = simulator_requests(spec["stats_url"]) - sim_before
        tg.cancel_scope.cancel()
    per_cycle = [0] * cycles
    for at, _ in sent:
        per_cycle[int((at - window_start) // interval)] += 1
    window = Window(
        cycles=cycles,
        requests=len(sent),
        by_kind=dict(Counter(kind for _, kind in sent)),
        per_cycle=per_cycle,
        cpu=cpu,
        wall=wall,
        late=late,
        simulator_requests=sim_count,
    )
    return RunResult(
        label=spec["label"],
        projects=len(parts.live.projects),
        cold=cold,
        window=window,
        rss_mb=rss_mb(),
        peak_rss_mb=peak_rss_mb(),
    )


def exporter_child() -> None:
    spec = json.loads(sys.stdin.read())
    result = anyio.run(
        _run_exporter, spec, backend="asyncio", backend_options={"loop_factory": VirtualTimeLoop}
    )
    print(json.dumps(asdict(result)), flush=True)


def start_exporter(spec: dict[str, Any]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--run-exporter"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(spec))
    proc.stdin.close()
    return proc


def finish_exporter(proc: subprocess.Popen[str]) -> RunResult:
    assert proc.stdout is not None
    out = proc.stdout.read()
    if proc.wait() != 0:
        raise RuntimeError(f"an exporter run failed (exit code {proc.returncode})")
    return run_result(json.loads(out.strip().splitlines()[-1]))


def run_result(data: dict[str, Any]) -> RunResult:
    return RunResult(
        label=data["label"],
        projects=data["projects"],
        cold=ColdStart(**data["cold"]),
        window=Window(**data["window"]),
        rss_mb=data["rss_mb"],
        peak_rss_mb=data["peak_rss_mb"],
    )


def exporter_spec(
    args: argparse.Namespace, sim: SimulatorProcess, label: str, settings: dict[str, Any],
    *, cycles: int, latency: float = 0.0,
) -> dict[str, Any]:  # fmt: skip
    return {
        "label": label,
        "settings": settings,
        "epoch": (T0 + SETTLE).timestamp(),
        "latency": latency,
        "warmup_cycles": args.warmup_cycles,
        "cycles": cycles,
        "stats_url": sim.stats_url,
    }


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def run_one(spec: dict[str, Any]) -> RunResult:
    started = time.perf_counter()
    proc = start_exporter(spec)
    try:
        result = finish_exporter(proc)
    finally:
        stop(proc)
    print(
        f"#   {result.label}: {per_cycle(result):.2f} requests per cycle, cold start "
        f"{result.cold.requests} requests in {result.cold.seconds:.0f} s (virtual), "
        f"{time.perf_counter() - started:.0f} s wall",
        flush=True,
    )
    return result


# -- the runs -------------------------------------------------------------------------------
# Each run has a simulator of its own (its clock only moves forward), so runs are independent
# jobs; `--jobs` runs several at once (each measures its own process's CPU and RSS).


def modes() -> tuple[bool, ...]:
    return (False, True) if FEED else (False,)


def with_simulator(
    args: argparse.Namespace, projects: int, body: Callable[[SimulatorProcess], Any]
) -> Any:
    sim = SimulatorProcess(projects, args.seed, args.history_hours)
    try:
        return body(sim)
    finally:
        sim.close()


def sweep_settings(
    args: argparse.Namespace, sim: SimulatorProcess, feed: bool, **extra: Any
) -> dict[str, Any]:
    """(a), (b) and (d): a rate limit high enough that it never binds. The details and tests
    of completed jobs, and their failing steps, are read once per job, never by a quiet cycle:
    they are left out, so that the cold starts before the windows take half the requests."""
    return sim.settings(
        args,
        feed=feed if FEED else None,
        lookback_hours=args.sweep_lookback_hours,
        rate=args.sweep_rps,
        burst=int(args.sweep_rps),
        concurrency=args.sweep_concurrency,
        collect={"job_details": False, "tests": False, "failed_steps": False},
        **extra,
    )


def sweep_run(args: argparse.Namespace, n: int, feed: bool) -> RunResult:
    def body(sim: SimulatorProcess) -> RunResult:
        label = f"{n} projects, org_feed {'on' if feed else 'off'}"
        cycles = args.cycles if feed else args.baseline_cycles
        spec = exporter_spec(args, sim, label, sweep_settings(args, sim, feed), cycles=cycles)
        return run_one(spec)

    result: RunResult = with_simulator(args, n, body)
    return result


@dataclass
class Point:
    """One project count: the exporter with the org feed, and the baseline without."""

    n: int
    off: RunResult
    on: RunResult | None  # None: `collect.org_feed` is not available


def per_cycle(result: RunResult) -> float:
    return result.window.requests / result.window.cycles


def cpu_per_cycle(result: RunResult) -> float:
    return result.window.cpu / result.window.cycles


@dataclass
class ColdRun:
    feed: bool
    result: RunResult
    rate: float
    burst: int

    @property
    def bound(self) -> float:
        """The fastest any client could go: (requests - burst) / rate."""
        return max(0, self.result.cold.requests - self.burst) / self.rate


def cold_run(args: argparse.Namespace, feed: bool) -> ColdRun:
    """(c): the default rate limit, burst and concurrency, and a simulated latency."""
    api = ApiSettings()

    def body(sim: SimulatorProcess) -> RunResult:
        settings = sim.settings(
            args,
            feed=feed if FEED else None,
            lookback_hours=args.lookback_hours,
            rate=api.requests_per_second,
            burst=api.burst,
            concurrency=api.max_concurrency,
        )
        label = f"cold start, {args.cold_projects} projects, org_feed {'on' if feed else 'off'}"
        spec = exporter_spec(args, sim, label, settings, cycles=1, latency=args.latency)
        spec["warmup_cycles"] = 0
        return run_one(spec)

    return ColdRun(
        feed, with_simulator(args, args.cold_projects, body), api.requests_per_second, api.burst
    )


@dataclass
class ShardRun:
    feed: bool
    shards: list[RunResult]
    single: RunResult  # one process, same projects and settings (from the sweep)


def shard_runs(args: argparse.Namespace) -> list[RunResult]:
    """(d): `--shard-projects` projects split over three shard processes, running at once
    against one simulator."""
    total = 3

    def body(sim: SimulatorProcess) -> list[RunResult]:
        procs = [
            start_exporter(
                exporter_spec(
                    args,
                    sim,
                    f"shard {i} of {total}",
                    sweep_settings(args, sim, FEED, sharding={"shard": i, "total_shards": total}),
                    cycles=args.cycles,
                )
            )
            for i in range(total)
        ]
        try:
            return [finish_exporter(proc) for proc in procs]
        finally:
            for proc in procs:
                stop(proc)

    shards: list[RunResult] = with_simulator(args, args.shard_projects, body)
    for result in shards:
        print(f"#   {result.label}: {per_cycle(result):.2f} requests per cycle", flush=True)
    return shards


def run_all(args: argparse.Namespace) -> tuple[list[Point], list[ColdRun], ShardRun | None]:
    """Every run, the largest first, `--jobs` at a time."""
    sizes = sorted(set(args.projects) | ({args.shard_projects} if args.shard_projects else set()))
    with ThreadPoolExecutor(args.jobs) as pool:
        sweep = {
            (n, feed): pool.submit(sweep_run, args, n, feed)
            for n in reversed(sizes)
            for feed in modes()
        }
        colds = (
            [pool.submit(cold_run, args, feed) for feed in modes()] if args.cold_projects else []
        )
        shards = pool.submit(shard_runs, args) if SHARDING and args.shard_projects else None
        results = {key: outcome(future) for key, future in sweep.items()}
        points = [
            Point(n, off, results.get((n, True)))
            for n in sorted(args.projects)
            if (off := results[n, False]) is not None
        ]
        single = results.get((args.shard_projects, FEED))
        shard_results = outcome(shards) if shards is not None else None
        shard_run = None
        if shard_results is not None and single is not None:
            shard_run = ShardRun(FEED, shard_results, single)
        cold_runs = [run for run in map(outcome, colds) if run is not None]
        return points, cold_runs, shard_run


def outcome(future: Future[Any]) -> Any:
    """A job's result, or None when it failed: the others are still reported."""
    try:
        return future.result()
    except Exception as err:
        print(f"# a run failed, left out of the tables: {err!r}", flush=True)
        return None


Results = tuple[list[Point], list[ColdRun], ShardRun | None]


def save(path: Path, results: Results) -> None:
    points, colds, shards = results
    data = {
        "points": [asdict(point) for point in points],
        "colds": [asdict(cold) for cold in colds],
        "shards": None if shards is None else asdict(shards),
    }
    path.write_text(json.dumps(data, indent=1) + "\n")


def load(path: Path) -> Results:
    """What `save` wrote: `--report` prints the tables and plots of an earlier run again."""
    data = json.loads(path.read_text())
    points = [
        Point(p["n"], run_result(p["off"]), run_result(p["on"]) if p["on"] else None)
        for p in data["points"]
    ]
    colds = [
        ColdRun(c["feed"], run_result(c["result"]), c["rate"], c["burst"]) for c in data["colds"]
    ]
    shards = data["shards"]
    return (
        points,
        colds,
        None
        if shards is None
        else ShardRun(
            shards["feed"], [run_result(r) for r in shards["shards"]], run_result(shards["single"])
        ),
    )


# -- the report -----------------------------------------------------------------------------


def starved(result: RunResult) -> str:
    """A note when the loop could not keep up: the window ran long on the real clock."""
    factor = result.window.late
    return f"; CPU-starved, window ran {factor:.2f}x long" if factor > 1.01 else ""


def kinds(result: RunResult) -> str:
    by_kind, cycles = result.window.by_kind, result.window.cycles
    return ", ".join(
        f"{kind} {by_kind.get(kind, 0) / cycles:.2f}" for kind in ("feed", "lists", "other")
    )


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares y = a + b x: (a, b)."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return my - b * mx, b


def growth_rows(label: str, points: list[tuple[int, float]]) -> list[Row]:
    """CPU per cycle against N: the linear fit's slope, and the exponent between the two
    largest N (cost per cycle ~ N^k; k <= 1.1 is at most linear)."""
    if len(points) < 2:
        return []
    intercept, slope = linear_fit([n for n, _ in points], [c for _, c in points])
    (n1, c1), (n2, c2) = sorted(points)[-2:]
    exponent = math.log(c2 / c1) / math.log(n2 / n1) if c1 > 0 and c2 > 0 else float("nan")
    return [
        Row(
            f"{label}: CPU grows at most linearly (N^k between N={n1} and {n2}, k <= 1.1)",
            f"slope {slope * 1000:.3f} ms per project per cycle, intercept "
            f"{intercept * 1000:.1f} ms; k = {exponent:.2f}",
            verdict(exponent <= 1.1),
        )
    ]


def report_sweep(args: argparse.Namespace, points: list[Point]) -> None:
    rows = []
    for p in points:
        target = 1 + p.n / 20
        if p.on is not None:
            on = per_cycle(p.on)
            rows.append(
                Row(
                    f"{p.n} projects, org_feed on: <= 1 + N/20 = {target:g} per cycle",
                    f"{on:.2f} (max {max(p.on.window.per_cycle)} in one cycle; {kinds(p.on)}"
                    f"{starved(p.on)})",
                    verdict(on <= target),
                )
            )
        rows.append(
            Row(
                f"{p.n} projects, baseline org_feed off",
                f"{per_cycle(p.off):.2f} (max {max(p.off.window.per_cycle)}; {kinds(p.off)}"
                f"{starved(p.off)})",
            )
        )
    runs = [r for p in points for r in (p.off, p.on) if r is not None]
    # The simulator's count also holds the requests of a late wake-up and those in flight at
    # the edges of the window: equal when the exporter kept up, slightly more otherwise.
    counts = ", ".join(f"{r.window.simulator_requests} / {r.window.requests}" for r in runs)
    rows.append(
        Row(
            "simulator's count / transport's count in the window (within 2%)",
            counts,
            verdict(
                all(
                    abs(r.window.simulator_requests - r.window.requests) <= 0.02 * r.window.requests
                    for r in runs
                )
            ),
        )
    )
    print_table(
        f"(a) requests per cycle, all projects quiet, interval {args.interval:g} s, "
        f"project_refresh {args.project_refresh:g} s, {args.cycles} cycles "
        f"({args.baseline_cycles} for the baseline)",
        rows,
    )
    rows = []
    for p in points:
        on = f"on {cpu_per_cycle(p.on) * 1000:.1f} ms, " if p.on is not None else ""
        rows.append(
            Row(
                f"{p.n} projects: CPU per cycle (exporter process)",
                f"{on}off {cpu_per_cycle(p.off) * 1000:.1f} ms "
                f"({cpu_per_cycle(p.off) / max(1.0, per_cycle(p.off)) * 1000:.2f} ms per request)",
            )
        )
        on_rss = f"on {p.on.rss_mb:.0f} MB (peak {p.on.peak_rss_mb:.0f}), " if p.on else ""
        rows.append(
            Row(
                f"{p.n} projects: RSS after the window",
                f"{on_rss}off {p.off.rss_mb:.0f} MB (peak {p.off.peak_rss_mb:.0f})",
            )
        )
    if all(p.on is not None for p in points):
        rows += growth_rows("org_feed on", [(p.n, cpu_per_cycle(p.on)) for p in points if p.on])
    rows += growth_rows("baseline", [(p.n, cpu_per_cycle(p.off)) for p in points])
    print_table("(b) CPU seconds per cycle and memory (exporter process only)", rows)


def report_cold(args: argparse.Namespace, runs: list[ColdRun]) -> None:
    rows = []
    for run in runs:
        cold = run.result.cold
        mode = "org_feed on" if run.feed else "baseline org_feed off"
        rows.append(
            Row(
                f"{mode}: time to a complete picture <= 1.2 x (requests - burst) / rate",
                f"{cold.seconds:.0f} s = {cold.seconds / run.bound:.2f} x {run.bound:.0f} s "
                f"({cold.requests} requests; wall {cold.wall:.0f} s, CPU {cold.cpu:.0f} s)",
                verdict(cold.seconds <= 1.2 * run.bound) if run.feed or not FEED else "-",
            )
        )
        rows.append(
            Row(
                f"{mode}: projects whose first cycle failed", f"{cold.down}", verdict(not cold.down)
            )
        )
    rate, burst = runs[0].rate, runs[0].burst
    print_table(
        f"(c) cold start, {args.cold_projects} projects, {rate:g} requests/s, burst {burst}, "
        f"simulated latency {args.latency * 1000:.0f} ms",
        rows,
    )


def report_shards(args: argparse.Namespace, run: ShardRun) -> None:
    rows = [
        Row(
            f"{result.label}: requests per cycle ({result.projects} projects)",
            f"{per_cycle(result):.2f} (max {max(result.window.per_cycle)}; {kinds(result)}"
            f"{starved(result)})",
        )
        for result in run.shards
    ]
    owned = sum(result.projects for result in run.shards)
    rows.append(
        Row(
            f"every project in exactly one shard ({run.single.projects} projects)",
            f"{owned} owned in total",
            verdict(owned == run.single.projects),
        )
    )
    total = sum(per_cycle(result) for result in run.shards)
    single = per_cycle(run.single)
    rows.append(
        Row(
            "three shards in total vs one process",
            f"{total:.2f} vs {single:.2f} per cycle ({total / single:.2f} x)",
        )
    )
    rows.append(
        Row(
            "CPU per cycle: three shards in total vs one process",
            f"{sum(cpu_per_cycle(r) for r in run.shards) * 1000:.0f} ms vs "
            f"{cpu_per_cycle(run.single) * 1000:.0f} ms",
        )
    )
    rows.append(
        Row(
            "RSS: each shard vs one process",
            f"{', '.join(f'{r.rss_mb:.0f}' for r in run.shards)} MB vs {run.single.rss_mb:.0f} MB",
        )
    )
    print_table(
        f"(d) three shards against one process, {args.shard_projects} projects, org_feed "
        f"{'on' if run.feed else 'off'}",
        rows,
    )


def plot(args: argparse.Namespace, points: list[Point]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [p.n for p in points]
    figures = {
        "scale-requests.png": ("API requests per cycle", per_cycle, "1 + N/20 (target)"),
        "scale-cpu.png": ("CPU seconds per cycle (exporter)", cpu_per_cycle, None),
    }
    for name, (ylabel, value, target) in figures.items():
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ax.plot(ns, [value(p.off) for p in points], "o-", label="org_feed off (baseline)")
        if all(p.on is not None for p in points):
            ax.plot(ns, [value(p.on) for p in points if p.on], "s-", label="org_feed on")
        if target:
            ax.plot(ns, [1 + n / 20 for n in ns], "k--", linewidth=1, label=target)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("quiet projects (N)")
        ax.set_ylabel(ylabel)
        ax.set_title(
            f"{ylabel}: interval {args.interval:g} s, project_refresh {args.project_refresh:g} s"
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot_dir / name, dpi=100)
        plt.close(fig)
        print(f"# plot: {args.plot_dir / name}")


def main() -> None:
    args = parse_args()
    if args.serve_simulator:
        anyio.run(_serve_simulator, args.projects[0], args.seed, args.history_hours)
        return
    if args.run_exporter:
        exporter_child()
        return
    print_parameters("bench/scale.py", args, hidden=("serve_simulator", "run_exporter"))
    if not FEED:
        print("# collect.org_feed is not available: only the baseline (org_feed off) runs")
    if not SHARDING:
        print("# sharding is not available: the three-shard run is left out")
    if args.report is not None:
        points, colds, shards = load(args.report)
    else:
        points, colds, shards = run_all(args)
        if args.save is not None:
            save(args.save, (points, colds, shards))
    report_sweep(args, points)
    if colds:
        report_cold(args, colds)
    if shards is not None:
        report_shards(args, shards)
    if args.plot_dir is not None:
        plot(args, points)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--projects",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[10, 50, 200, 500, 2000],
        help="project counts, comma-separated",
    )
    parser.add_argument("--quick", action="store_true", help="10 and 50 projects, no plot")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--interval", type=float, default=30.0, help="polling interval, s")
    parser.add_argument("--project-refresh", type=float, default=600.0, help="s")
    parser.add_argument("--cycles", type=int, default=20, help="measured cycles, org_feed on")
    parser.add_argument(
        "--baseline-cycles", type=int, default=3, help="measured cycles, org_feed off"
    )
    parser.add_argument("--warmup-cycles", type=int, default=1, help="after the cold start")
    parser.add_argument("--history-hours", type=float, default=6.0, help="the world's history")
    parser.add_argument(
        "--lookback-hours", type=float, default=24.0, help="collect.lookback of (c), the default"
    )
    parser.add_argument(
        "--sweep-lookback-hours", type=float, default=3.0, help="collect.lookback of (a), (b)"
    )
    parser.add_argument("--sweep-rps", type=float, default=1000.0, help="rate limit of (a), (b)")
    parser.add_argument("--sweep-concurrency", type=int, default=64)
    parser.add_argument(
        "--cold-projects", type=int, default=500, help="(c) at the default rate limit; 0: skip"
    )
    parser.add_argument("--latency", type=float, default=0.1, help="(c) simulated latency, s")
    parser.add_argument("--shard-projects", type=int, default=500, help="(d) three shards; 0: skip")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (each in its processes)")
    parser.add_argument("--plot-dir", type=Path, default=BENCH, help="where the PNGs go")
    parser.add_argument("--save", type=Path, help="write every run's results to this JSON file")
    parser.add_argument("--report", type=Path, help="no runs: the tables and plots of --save's")
    parser.add_argument("--no-plot", action="store_true", help="no PNGs (no matplotlib needed)")
    parser.add_argument("--serve-simulator", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run-exporter", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.no_plot:
        args.plot_dir = None
    if args.quick:
        args.projects, args.cold_projects, args.shard_projects = [10, 50], 50, 50
        args.plot_dir = None
    return args


if __name__ == "__main__":
    main()
