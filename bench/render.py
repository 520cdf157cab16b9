"""Serving /metrics with ~100k series while the state keeps changing: scrape latency, what the
event loop sees, and how long the snapshot holds it.

    .venv/bin/python bench/render.py [--changes-per-second 10] [--scrapes 200] [--quick]

The server (a child process, as in bench/scrape.py) holds the same synthetic ~100k-series
state, runs the real `Publisher` (its `run` loop, `min_gap` 1 s) and the real ASGI app under
uvicorn, and a collector stand-in on the same event loop: `--changes-per-second` times a
second it completes a new pipeline run (a workflow and its jobs) on a random project, records
a successful collection and asks the publisher for a render, as `LiveCollector` does after a
project's cycle. A ticker task sleeps 1 ms at a time and records how late it wakes: the
event loop's lag, i.e. what a scrape or a webhook waiting for the loop sees.

The client (this process) scrapes with curl, as Prometheus would (native code), first with
`Accept-Encoding: identity`, then with gzip (what Prometheus asks for). The baseline in the
same run is the same server with the state left alone (`--changes-per-second 0`).

Also reported, in this process, over `--snapshots` publishes of `--changes-per-second`
changes each: `State.snapshot` of the whole state (what the publisher held the event loop for
before issue 19), each changed project's snapshot, the slices of the event loop the publisher
holds while snapshotting them (calls of `State.snapshot_project` with no pause between), and
the event loop's lag meanwhile.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import anyio
import uvicorn
from _common import Row, load_average, percentile, print_parameters, print_table, verdict
from prometheus_client import CollectorRegistry
from scrape import WATCH_START, _workflow_run, build_state, curl_sequential, seconds_of
from starlette.types import Receive, Scope, Send

from exporter.state import State
from exporter.state.updates import PipelineUpdate
from exporter.web.app import create_app
from exporter.web.publisher import Publisher


class LoopLag:
    """Sleeps `tick` seconds at a time and keeps how late each wake-up was."""

    def __init__(self, tick: float = 0.001) -> None:
        self.tick = tick
        self.lags: list[float] = []

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await anyio.sleep(self.tick)
            self.lags.append(time.perf_counter() - started - self.tick)


class Collecting:
    """The collector stand-in: a new completed run on a random project, `rate` times a second."""

    def __init__(self, state: State, publisher: Publisher, args: argparse.Namespace) -> None:
        self.state, self.publisher, self.args = state, publisher, args
        self.rng = random.Random(args.seed + 1)
        self.now = WATCH_START + 1e6
        self.changes = 0

    async def run(self) -> None:
        if self.args.changes_per_second <= 0:
            return
        begin = time.perf_counter()
        while True:
            self.changes += 1
            await anyio.sleep(
                max(0.0, begin + self.changes / self.args.changes_per_second - time.perf_counter())
            )
            self.change()

    def change(self) -> None:
        p = self.rng.randrange(self.args.projects)
        project = f"gh/ocean-labs/repo-{p:03d}"
        url = f"https://app.circleci.com/pipelines/github/ocean-labs/repo-{p:03d}"
        branch = (
            "main" if self.rng.random() < 0.5 else f"feature/branch-{self.rng.randrange(1, 4):02d}"
        )
        number = 10_000_000 + self.changes
        self.now += self.rng.uniform(1, 10)
        self.state.apply(
            PipelineUpdate(project, branch, f"p-{number}", number, "webhook", self.now)
        )
        for w in range(self.args.workflows):
            for update in _workflow_run(
                self.rng, self.args, project, branch, w, number, self.now, url
            ):
                self.state.apply(update)
        self.state.record_success(project, "live", self.now)
        self.publisher.request()


def _with_stats(app: Callable[..., Any], stats: Callable[[], dict[str, Any]]) -> Callable[..., Any]:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/bench-stats":
            body = json.dumps(stats()).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return wrapped


def serve(args: argparse.Namespace) -> None:
    state = build_state(args)
    publisher = Publisher(state, {"live": 30.0}, min_gap=1.0)
    lag = LoopLag()
    collecting = Collecting(state, publisher, args)
    app = create_app(publisher=publisher, registry=CollectorRegistry(), ready=lambda: True)

    def stats() -> dict[str, Any]:
        lags, lag.lags = lag.lags, []
        return {"lags": lags, "changes": collecting.changes, "series": publisher.rendered.series}

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))

    async def main() -> None:
        config = uvicorn.Config(_with_stats(app, stats), log_config=None, access_log=False,
                                lifespan="off")  # fmt: skip
        server = uvicorn.Server(config)
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            while not server.started:  # noqa: ASYNC110 - uvicorn offers only this flag
                await anyio.sleep(0.01)
            tg.start_soon(publisher.run)
            tg.start_soon(collecting.run)
            tg.start_soon(lag.run)
            print(json.dumps({"port": sock.getsockname()[1]}), flush=True)

    anyio.run(main)


class Server:
    def __init__(self, args: argparse.Namespace, changes_per_second: float) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", f"--changes-per-second={changes_per_second}",
             *(f"--{k}={getattr(args, k)}" for k in ("projects", "branches", "workflows", "jobs",
                                                     "runs", "seed"))],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the server exited before listening")
        port = json.loads(line)["port"]
        self.base = f"http://127.0.0.1:{port}"

    def stats(self) -> dict[str, Any]:
        out = subprocess.run(["curl", "-sS", f"{self.base}/bench-stats"], check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
        result: dict[str, Any] = json.loads(out)
        return result

    def close(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=30)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def latency_cell(values: list[float]) -> str:
    return (f"p50 {ms(percentile(values, 50))}, p99 {ms(percentile(values, 99))}, "
            f"max {ms(max(values))} (n={len(values)})")  # fmt: skip


def paced_scrapes(url: str, args: argparse.Namespace, encoding: str) -> list[float]:
    """`args.scrapes` scrapes by curl, `args.scrape_gap` apart, so that they span renders."""
    out = []
    for _ in range(args.scrapes):
        out += seconds_of(curl_sequential(url, 1, encoding))
        time.sleep(args.scrape_gap)
    return out


def measure(args: argparse.Namespace, changes_per_second: float) -> dict[str, Any]:
    server = Server(args, changes_per_second)
    try:
        time.sleep(args.warmup)  # the first renders of the collecting phase
        server.stats()  # drop the lag of the warm-up
        text = paced_scrapes(f"{server.base}/metrics", args, "identity")
        gzip = paced_scrapes(f"{server.base}/metrics", args, "gzip")
        stats = server.stats()
    finally:
        server.close()
    return {"text": text, "gzip": gzip, "lags": stats["lags"], "changes": stats["changes"],
            "series": stats["series"]}  # fmt: skip


def snapshot_blocking(args: argparse.Namespace) -> tuple[float, float, int]:
    """(median, max) seconds of `State.snapshot` of the whole state, and its series."""
    state = build_state(args)
    publisher = Publisher(state, {"live": 30.0})
    times = []
    for _ in range(args.snapshots):
        started = time.perf_counter()
        state.snapshot(WATCH_START + 1e6)
        times.append(time.perf_counter() - started)
    return statistics.median(times), max(times), publisher.rendered.series


class SnapshotSlices:
    """Times `State.snapshot_project` calls, by the wall clock and by the thread's CPU time
    (the wall time includes the moments the OS gave the core to another process). Calls with
    no pause between them ran in one slice of the event loop (the publisher yields between)."""

    def __init__(self, state: State) -> None:
        self.calls: list[tuple[float, float, float]] = []  # (wall start, wall end, CPU)
        take = state.snapshot_project

        def timed(project: str) -> Any:
            started, cpu = time.perf_counter(), time.thread_time()
            part = take(project)
            self.calls.append((started, time.perf_counter(), time.thread_time() - cpu))
            return part

        state.snapshot_project = timed  # type: ignore[method-assign]

    def slices(self) -> tuple[list[float], list[float]]:
        """(wall, CPU) seconds of each slice."""
        walls: list[float] = []
        cpus: list[float] = []
        first = last = None
        for started, ended, cpu in self.calls:
            if last is None or started - last > 50e-6:
                walls.append(0.0)
                cpus.append(0.0)
                first = started
            assert first is not None
            walls[-1] = ended - first
            cpus[-1] += cpu
            last = ended
        return walls, cpus


class GcPauses:
    """CPython's cyclic garbage collections of the oldest generation, and how long each took:
    they run on whichever thread allocates when they are due, the event loop's included."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._started)


def publish_steps(
    args: argparse.Namespace,
) -> tuple[list[float], tuple[list[float], list[float]], list[float], list[float]]:
    """Publishes after changes, in this process: the event loop's lag meanwhile, the slices
    of the loop the snapshots of changed projects took, each project's snapshot, and the
    gen-2 garbage collections meanwhile."""
    state = build_state(args)
    publisher = Publisher(state, {"live": 30.0})
    collecting = Collecting(state, publisher, args)
    lag = LoopLag()
    timing = SnapshotSlices(state)
    collections = GcPauses()
    gc.callbacks.append(collections)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lag.run)
            for _ in range(args.snapshots):
                for _ in range(max(1, int(args.changes_per_second))):
                    collecting.change()
                await publisher.publish_now()
            tg.cancel_scope.cancel()

    try:
        anyio.run(main)
    finally:
        gc.callbacks.remove(collections)
    return lag.lags, timing.slices(), [cpu for _, _, cpu in timing.calls], collections.pauses


def run(args: argparse.Namespace) -> None:
    load_before = load_average()
    snap_median, snap_max, series = snapshot_blocking(args)
    steps, slices, projects, gc_pauses = publish_steps(args)
    collecting = measure(args, args.changes_per_second)
    static = measure(args, 0)
    load_after = load_average()
    lags = collecting["lags"]
    print_table(
        f"{series} series, {args.changes_per_second:g} changed projects/s, load average "
        f"{load_before} before, {load_after} after",
        [
            Row(
                "State.snapshot of the whole state (median, max): the loop's wait before issue 19",
                f"{ms(snap_median)}, {ms(snap_max)}",
            ),
            Row("publish: one changed project's snapshot (CPU)", latency_cell(projects)),
            Row(
                "publish: slices of the loop the snapshots hold (CPU) <= 5 ms",
                latency_cell(slices[1]),
                verdict(max(slices[1]) <= 0.005),
            ),
            Row("publish: the same slices by the wall clock", latency_cell(slices[0])),
            Row(
                "publishes: CPython gen-2 garbage collections (any thread, the loop's too)",
                latency_cell(gc_pauses) if gc_pauses else "none",
            ),
            Row("publish after changes: event-loop lag (1 ms ticker)", latency_cell(steps)),
            Row(
                "collecting: scrapes by curl, text: p99 <= 50 ms",
                latency_cell(collecting["text"]),
                verdict(percentile(collecting["text"], 99) <= 0.05),
            ),
            Row(
                "collecting: scrapes by curl, gzip: p99 <= 50 ms",
                latency_cell(collecting["gzip"]),
                verdict(percentile(collecting["gzip"], 99) <= 0.05),
            ),
            Row("collecting: event-loop lag (1 ms ticker)", latency_cell(lags) if lags else "-"),
            Row("collecting: changes applied during the scrapes", str(collecting["changes"])),
            Row("baseline, static state: scrapes by curl, text", latency_cell(static["text"])),
            Row("baseline, static state: scrapes by curl, gzip", latency_cell(static["gzip"])),
            Row("baseline, static state: event-loop lag", latency_cell(static["lags"])),
        ],
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--branches", type=int, default=4, help="per project")
    parser.add_argument("--workflows", type=int, default=2, help="per branch")
    parser.add_argument("--jobs", type=int, default=4, help="per workflow")
    parser.add_argument("--runs", type=int, default=3, help="pipelines per branch")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--changes-per-second", type=float, default=10.0)
    parser.add_argument("--scrapes", type=int, default=200, help="per encoding")
    parser.add_argument("--scrape-gap", type=float, default=0.05, help="seconds between scrapes")
    parser.add_argument("--snapshots", type=int, default=20)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before scraping")
    parser.add_argument("--quick", action="store_true", help="50 scrapes per encoding")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.scrapes, args.snapshots = 50, 10
    return args


def main() -> None:
    args = parse_args()
    if args.serve:
        serve(args)
        return
    if shutil.which("curl") is None:
        sys.exit("bench/render.py needs curl")
    print_parameters("bench/render.py", args, hidden=("serve",))
    run(args)


if __name__ == "__main__":
    main()
