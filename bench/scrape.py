"""Benchmark of serving /metrics with ~100k series: scrape latency and resident memory, each
next to a naive baseline.

    .venv/bin/python bench/scrape.py [--projects 50] [--quick]

Ours: a State fed synthetic run updates, published by the Publisher (rendered once per
snapshot), served by the real ASGI app (`create_app`) under uvicorn on a loopback port.
Baseline: the same series in plain prometheus_client Gauges, Counters and Histograms in a
CollectorRegistry, served by prometheus_client's ASGI app, which renders on every scrape.

Each server is a child process of its own, so its RSS is its own and the scraping client
(this process, httpx) does not share its core. Most scrapes ask for no compression, which
measures the serving path; curl's gzip scrapes (what Prometheus asks for) add the bytes on the
wire and the latency with gzip, ours compressing each part once, when it is rendered (the
scrape adds the live process families), the baseline the whole body per scrape.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import prometheus_client
import uvicorn
from _common import Row, peak_rss_mb, percentile, print_parameters, print_table, rss_mb, verdict
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from exporter.state import Buckets, State
from exporter.state.updates import (
    JobDetailsUpdate,
    JobUpdate,
    PipelineUpdate,
    ProjectUpdate,
    RunUpdate,
    TestResultsUpdate,
    WorkflowUpdate,
)
from exporter.web.app import create_app
from exporter.web.publisher import Publisher

WATCH_START = 1_780_000_000.0
_BUCKETS = Buckets(
    workflow_duration=(10, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800),
    job_duration=(10, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800),
    queue=(1, 5, 10, 30, 60, 120, 300, 600, 1800),
)
_STATUSES = ("success", "failed", "canceled")


# -- synthetic data -------------------------------------------------------------------------


def synthetic_updates(args: argparse.Namespace, start: float = WATCH_START) -> Iterator[RunUpdate]:
    """Completed runs on every (project, branch, workflow, job), from a seeded stream, from
    `start` on."""
    rng = random.Random(args.seed)
    now = start
    for p in range(args.projects):
        project = f"gh/ocean-labs/repo-{p:03d}"
        url = f"https://app.circleci.com/pipelines/github/ocean-labs/repo-{p:03d}"
        yield ProjectUpdate(project, f"repo-{p:03d}", "ocean-labs", "main", url)
        for b in range(args.branches):
            branch = "main" if b == 0 else f"feature/branch-{b:02d}"
            for n in range(args.runs):
                now += rng.uniform(10, 120)
                number = p * 100_000 + b * 1000 + n
                pipeline_id = f"p-{number}"
                yield PipelineUpdate(project, branch, pipeline_id, number, "webhook", now)
                for w in range(args.workflows):
                    yield from _workflow_run(rng, args, project, branch, w, number, now, url)


def _workflow_run(
    rng: random.Random,
    args: argparse.Namespace,
    project: str,
    branch: str,
    w: int,
    number: int,
    created: float,
    url: str,
) -> Iterator[RunUpdate]:
    workflow, workflow_id = f"workflow-{w}", f"w-{number}-{w}"
    status = rng.choices(_STATUSES, (0.85, 0.12, 0.03))[0]
    stopped = created
    for j in range(args.jobs):
        job, job_id = f"job-{j:02d}", f"j-{number}-{w}-{j}"
        started = stopped + rng.uniform(1, 60)
        stopped = started + rng.lognormvariate(5, 1)
        job_url = f"{url}/{number}/workflows/{workflow_id}/jobs/{number * 10 + j}"
        yield JobUpdate(
            project, branch, workflow, workflow_id, job, job_id, number * 10 + j, status,
            created, started, stopped, job_url,
        )  # fmt: skip
        yield JobDetailsUpdate(project, branch, workflow, job, job_id, started - 5, started)
        counts = {"success": rng.randint(50, 500), "failure": int(status == "failed")}
        yield TestResultsUpdate(project, branch, workflow, job, job_id, created, counts)
    yield WorkflowUpdate(
        project, branch, workflow, workflow_id, number, status, created, stopped,
        f"{url}/{number}/workflows/{workflow_id}",
    )  # fmt: skip


def build_state(args: argparse.Namespace) -> State:
    state = State(watch_start=WATCH_START, buckets=_BUCKETS, series_ttl=1e9)
    for update in synthetic_updates(args):
        state.apply(update)
    return state


# -- the servers (child processes) ----------------------------------------------------------


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    return sock


async def _serve(app: Callable[..., Any], sock: socket.socket, ready: Mapping[str, object]) -> None:
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        while not server.started:  # noqa: ASYNC110 - uvicorn offers only this flag
            await anyio.sleep(0.01)
        print(json.dumps({"port": sock.getsockname()[1], **ready}), flush=True)


def serve_ours(args: argparse.Namespace) -> None:
    baseline_rss = rss_mb()
    started = time.perf_counter()
    state = build_state(args)
    built = time.perf_counter()
    publisher = Publisher(state, {"live": 30.0}, clock=lambda: WATCH_START + 1e6)
    rendered_in = time.perf_counter() - built
    Path(args.exposition).write_bytes(publisher.rendered.text)
    app = create_app(publisher=publisher, registry=CollectorRegistry(), ready=lambda: True)
    ready = {
        "series": publisher.rendered.series,
        "bytes": len(publisher.rendered.text),
        "build_seconds": built - started,
        "render_seconds": rendered_in,
        "rss_imports_mb": baseline_rss,
        "rss_mb": rss_mb(),
        "peak_rss_mb": peak_rss_mb(),
    }
    anyio.run(_serve, app, _listen(), ready)


def serve_baseline(args: argparse.Namespace) -> None:
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # ours has none
    baseline_rss = rss_mb()
    registry = CollectorRegistry()
    text = Path(args.exposition).read_text()
    for family in text_string_to_metric_families(text):
        if family.type == "histogram":
            _load_histogram(registry, family)
        elif family.type == "counter":
            _load_counter(registry, family)
        elif family.samples:
            _load_gauge(registry, family)
    del text
    prometheus_client.generate_latest(registry)
    series = sum(len(f.samples) for f in registry.collect())
    app = prometheus_client.make_asgi_app(registry)
    ready = {
        "series": series,
        "rss_imports_mb": baseline_rss,
        "rss_mb": rss_mb(),
        "peak_rss_mb": peak_rss_mb(),
    }
    anyio.run(_serve, app, _listen(), ready)


def _labelnames(family: Metric) -> tuple[str, ...]:
    return tuple(k for k in family.samples[0].labels if k != "le")


def _load_counter(registry: CollectorRegistry, family: Metric) -> None:
    counter = Counter(family.name, family.documentation, _labelnames(family), registry=registry)
    for sample in family.samples:
        if sample.name.endswith("_total"):
            (counter.labels(**sample.labels) if sample.labels else counter).inc(sample.value)


def _load_gauge(registry: CollectorRegistry, family: Metric) -> None:
    gauge = Gauge(family.name, family.documentation, _labelnames(family), registry=registry)
    for sample in family.samples:
        (gauge.labels(**sample.labels) if sample.labels else gauge).set(sample.value)


def _load_histogram(registry: CollectorRegistry, family: Metric) -> None:
    labelnames = _labelnames(family)
    buckets = sorted({float(s.labels["le"]) for s in family.samples if s.name.endswith("_bucket")})
    histogram = Histogram(
        family.name, family.documentation, labelnames, buckets=buckets, registry=registry
    )
    previous: dict[tuple[str, ...], float] = {}
    for sample in family.samples:
        if not sample.name.endswith("_bucket"):
            continue
        key = tuple(sample.labels[k] for k in labelnames)
        child = histogram.labels(*key)
        # Cumulative counts back to observations at each bucket's bound: the same buckets,
        # counts and series (only the sums differ, which costs nothing).
        for _ in range(int(sample.value - previous.get(key, 0.0))):
            child.observe(float(sample.labels["le"]))
        previous[key] = sample.value


# -- the scraping client (this process) -----------------------------------------------------


class Server:
    """A server child process; `ready` is what it reported once listening."""

    def __init__(self, mode: str, args: argparse.Namespace) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", mode, "--exposition", args.exposition,
             *_data_flags(args)],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {mode} server exited before listening")
        self.ready: dict[str, float] = json.loads(line)
        self.url = f"http://127.0.0.1:{int(self.ready['port'])}/metrics"
        self.pid = self._proc.pid

    def close(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=30)


def _data_flags(args: argparse.Namespace) -> list[str]:
    return [
        f"--{name}={getattr(args, name)}"
        for name in ("projects", "branches", "workflows", "jobs", "runs", "seed")
    ]


async def _scrape(client: httpx.AsyncClient, url: str, accept: str) -> float:
    started = time.perf_counter()
    response = await client.get(url, headers={"Accept": accept})
    response.raise_for_status()
    return time.perf_counter() - started


async def sequential(url: str, count: int, accept: str = "text/plain") -> list[float]:
    async with httpx.AsyncClient(headers={"Accept-Encoding": "identity"}, timeout=300) as client:
        await _scrape(client, url, accept)  # warm the connection and the server
        return [await _scrape(client, url, accept) for _ in range(count)]


def curl_sequential(url: str, count: int, encoding: str = "identity") -> list[tuple[float, int]]:
    """The same scrapes by curl: what a client that is not Python sees of the server's time.
    (seconds, bytes on the wire) per scrape; with gzip, curl keeps the body compressed, as it
    came over the wire."""
    samples = []
    for _ in range(count):
        out = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-H", f"Accept-Encoding: {encoding}",
             "-w", "%{time_total} %{size_download}", url],
            check=True, capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        samples.append((float(out[0]), int(out[1])))
    return samples


def seconds_of(samples: list[tuple[float, int]]) -> list[float]:
    return [seconds for seconds, _ in samples]


def wire_row(name: str, samples: list[tuple[float, int]], plain_bytes: int) -> Row:
    size = samples[-1][1]
    return Row(name, f"{size / 1e3:.0f} kB ({size / plain_bytes:.1%} of the text)", "-")


async def burst(url: str, count: int) -> tuple[list[float], float]:
    """`count` scrapes sent at once, each on its own connection; their latencies and the wall."""
    limits = httpx.Limits(max_connections=count)
    latencies: list[float] = []
    async with httpx.AsyncClient(
        headers={"Accept-Encoding": "identity"}, timeout=300, limits=limits
    ) as client:

        async def one() -> None:
            latencies.append(await _scrape(client, url, "text/plain"))

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(count):
                tg.start_soon(one)
        return latencies, time.perf_counter() - started


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def latency_row(name: str, latencies: list[float], target: bool = False) -> Row:
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    return Row(
        f"{name}: p99 < 50 ms" if target else name,
        f"p50 {ms(p50)}, p99 {ms(p99)}, max {ms(max(latencies))} (n={len(latencies)})",
        verdict(p99 < 0.05) if target else "-",
    )


def rss_cell(ready: Mapping[str, float]) -> str:
    return (
        f"{ready['rss_mb']:.0f} MB (imports alone {ready['rss_imports_mb']:.0f} MB, "
        f"peak so far {ready['peak_rss_mb']:.0f} MB)"
    )


async def run(args: argparse.Namespace) -> None:
    ours = Server("ours", args)
    try:
        ours_seq = await sequential(ours.url, args.scrapes)
        ours_om = await sequential(ours.url, args.scrapes, "application/openmetrics-text")
        have_curl = shutil.which("curl") is not None
        ours_curl = curl_sequential(ours.url, args.scrapes) if have_curl else []
        # Since issue 19 the render deflates its parts; before, the first gzip scrape did.
        ours_gzip_first = curl_sequential(ours.url, 1, "gzip") if have_curl else []
        ours_gzip = curl_sequential(ours.url, args.scrapes, "gzip") if have_curl else []
        ours_burst, ours_burst_wall = await burst(ours.url, args.burst)
        ours_peak = peak_rss_mb(ours.pid)
    finally:
        ours.close()
    base = Server("baseline", args)
    try:
        base_seq = await sequential(base.url, args.baseline_scrapes)
        # prometheus_client compresses every gzip scrape anew.
        base_gzip = curl_sequential(base.url, args.baseline_scrapes, "gzip") if have_curl else []
        base_burst, base_burst_wall = await burst(base.url, args.baseline_burst)
        base_peak = peak_rss_mb(base.pid)
    finally:
        base.close()

    o, b = ours.ready, base.ready
    print_table(
        f"/metrics with {int(o['series'])} series "
        f"({o['bytes'] / 1e6:.1f} MB of text), build {o['build_seconds']:.1f} s, "
        f"render {ms(o['render_seconds'])}",
        [
            Row(
                "series (rendered.series) >= 100k",
                f"{int(o['series'])}",
                verdict(o["series"] >= 1e5),
            ),
            # The target row is curl's: like Prometheus (Go), it reads 15 MB in native code, so
            # it sees the server's time. httpx's numbers are mostly Python reading the body.
            *(
                [
                    latency_row(
                        f"ours, {args.scrapes} sequential scrapes by curl, text",
                        seconds_of(ours_curl),
                        target=True,
                    ),
                    latency_row(
                        f"ours, {args.scrapes} sequential scrapes by curl, gzip",
                        seconds_of(ours_gzip),
                        target=True,
                    ),
                    Row(
                        "ours, first gzip scrape after the render",
                        ms(ours_gzip_first[0][0]),
                        "-",
                    ),
                    wire_row("ours, bytes on the wire, identity", ours_curl, int(o["bytes"])),
                    wire_row("ours, bytes on the wire, gzip", ours_gzip, int(o["bytes"])),
                ]
                if ours_curl
                else []
            ),
            latency_row(
                f"ours, {args.scrapes} sequential scrapes by httpx (client-bound), text",
                ours_seq,
                target=not ours_curl,
            ),
            latency_row(f"ours, {args.scrapes} sequential scrapes, OpenMetrics", ours_om),
            latency_row(
                f"ours, burst of {args.burst} concurrent (wall {ours_burst_wall:.2f} s)", ours_burst
            ),
            latency_row(
                f"baseline (render per scrape), {args.baseline_scrapes} sequential, "
                f"{int(b['series'])} series",
                base_seq,
            ),
            *(
                [
                    latency_row(
                        f"baseline, {args.baseline_scrapes} sequential by curl, gzip "
                        "(compresses every scrape)",
                        seconds_of(base_gzip),
                    ),
                    wire_row("baseline, bytes on the wire, gzip", base_gzip, int(o["bytes"])),
                ]
                if base_gzip
                else []
            ),
            latency_row(
                f"baseline, burst of {args.baseline_burst} concurrent "
                f"(wall {base_burst_wall:.2f} s)",
                base_burst,
            ),
            Row("ours: RSS after build + render < 300 MB", rss_cell(o), verdict(o["rss_mb"] < 300)),
            Row(
                "ours: peak RSS (VmHWM) after all scrapes < 300 MB",
                f"{ours_peak:.0f} MB",
                verdict(ours_peak < 300),
            ),
            Row("baseline: RSS, same series in prometheus_client", rss_cell(b)),
            Row("baseline: peak RSS (VmHWM) after all scrapes", f"{base_peak:.0f} MB"),
        ],
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--branches", type=int, default=4, help="per project")
    parser.add_argument("--workflows", type=int, default=2, help="per branch")
    parser.add_argument("--jobs", type=int, default=4, help="per workflow")
    parser.add_argument("--runs", type=int, default=3, help="pipelines per branch")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scrapes", type=int, default=200, help="sequential scrapes")
    parser.add_argument("--baseline-scrapes", type=int, default=50)
    parser.add_argument("--burst", type=int, default=100, help="concurrent scrapes")
    parser.add_argument("--baseline-burst", type=int, default=20, help="it renders each one")
    parser.add_argument("--quick", action="store_true", help="50 scrapes, bursts of 20")
    parser.add_argument("--serve", choices=("ours", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--exposition", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.scrapes, args.baseline_scrapes, args.burst, args.baseline_burst = 50, 20, 20, 10
    return args


def main() -> None:
    args = parse_args()
    if args.serve == "ours":
        serve_ours(args)
        return
    if args.serve == "baseline":
        serve_baseline(args)
        return
    print_parameters("bench/scrape.py", args, hidden=("serve", "exposition"))
    with tempfile.TemporaryDirectory() as tmp:
        args.exposition = str(Path(tmp) / "exposition.txt")
        anyio.run(run, args)


if __name__ == "__main__":
    main()
