"""Event-to-metric latency and throughput of the webhook receiver, against polling.

    .venv/bin/python bench/webhooks_latency.py [--events N] [--rate R] [--seed S] [--padding P]

Builds a simulated organisation, turns the runs it completes into signed webhook deliveries,
and sends them through the exporter's real ASGI app (signature check, parsing, dedupe,
State.apply) with the real Publisher re-rendering the metrics, all on one event loop (one
core). Reported:
- throughput: deliveries posted back to back, verified and applied, per second;
- latency: from sending a delivery (paced at --rate per second) to the end of the first
  re-render whose snapshot includes it, i.e. when /metrics would show it;
- the baseline in the same run: the same completions seen by polling every
  `collect.interval` (30 s) at a random phase, a re-render later.
Run twice: on the 20 simulated projects alone, then with the state padded by the ~100k
synthetic series of bench/scrape.py (`--padding` projects of it, 0: skip), so each render and
snapshot costs what it costs in a large organisation.
Deterministic inputs (seeded world, seeded phase); timings are this machine's.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import anyio
import httpx
from _common import load_average
from scrape import synthetic_updates

from exporter.components import WEBHOOK_PUBLISH_GAP, build_components
from exporter.settings import load_settings
from exporter.simulator import SimClock, SimConfig, World, create_app, sign
from exporter.simulator.model import Workflow
from exporter.simulator.webhooks import webhook_payload
from exporter.state.updates import RunUpdate
from exporter.web.app import create_app as exporter_app
from exporter.web.publisher import Publisher
from exporter.web.webhooks import PATH

SECRET = "bench-secret"
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
POLL_INTERVAL = 30.0  # collect.interval's default
PUBLISH_GAP = WEBHOOK_PUBLISH_GAP


class TimedPublisher(Publisher):
    """Records (snapshot taken, render finished) of every publish."""

    renders: list[tuple[float, float]]

    async def publish_now(self) -> None:
        started = time.perf_counter()
        await super().publish_now()
        self.renders.append((started, time.perf_counter()))


def deliveries(world: World, count: int) -> list[tuple[bytes, dict[str, str], float]]:
    """(body, headers, completion time in world seconds) of the first `count` completions."""
    out: list[tuple[bytes, dict[str, str], float]] = []
    end = world.clock.now()
    for n, run in enumerate(world.completed_between(end - timedelta(days=30), end)):
        event_type = "workflow-completed" if isinstance(run, Workflow) else "job-completed"
        payload = webhook_payload(run, f"event-{n}", "hook", "bench")
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"content-type": "application/json", "circleci-event-type": event_type,
                   "circleci-signature": sign(body, SECRET)}  # fmt: skip
        out.append((body, headers, run.stopped_at.timestamp()))
        if len(out) == count:
            break
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def padding_updates(projects: int, seed: int) -> list[RunUpdate]:
    """The synthetic series of bench/scrape.py for `projects` projects (~2k series each)."""
    shape = argparse.Namespace(projects=projects, branches=4, workflows=2, jobs=4, runs=3,
                               seed=seed)  # fmt: skip
    return list(synthetic_updates(shape, start=T0.timestamp()))


async def bench(events: int, rate: float, seed: int, padding: int) -> None:
    world = World(SimConfig(projects=20, seed=seed, history=timedelta(days=30)),
                  SimClock.manual(T0))  # fmt: skip
    sent = deliveries(world, events)
    settings = load_settings(
        None,
        {
            "api": {"url": "http://sim/api", "token": world.config.token,
                    "requests_per_second": 1e4, "burst": 10**4, "max_concurrency": 64},
            "projects": [{"slug": p.slug} for p in world.projects],
            "defaults": {"other_branches": "fold"},
            "collect": {"lookback": 60.0, "series_ttl": 1e9},
            "webhooks": {"secret": f"old-secret,{SECRET}"},
        },
    )  # fmt: skip
    api = httpx.ASGITransport(app=create_app(world))
    async with build_components(settings, transport=api, watch_start=T0.timestamp()) as parts:
        for collector in parts.live.projects.values():
            await collector.cycle()  # reads each project, so branch policies are known
    for update in padding_updates(padding, seed) if padding else ():
        parts.state.apply(update)
    receiver = parts.webhooks
    assert receiver is not None
    # The same wiring, with a publisher that times its renders.
    publisher = TimedPublisher(parts.state, {"live": POLL_INTERVAL}, min_gap=PUBLISH_GAP)
    publisher.renders = []
    receiver.on_applied = publisher.request
    app = exporter_app(publisher=publisher, registry=parts.registry, ready=lambda: True,
                       webhooks=receiver)  # fmt: skip
    transport = httpx.ASGITransport(app=app)
    rows: list[tuple[str, str, str, str, str, str]] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as http:
        # Throughput: back to back; half are first deliveries, half the same again (dedupe).
        half = sent[: len(sent) // 2]
        for label, batch in (("applied", half), ("duplicate", half)):
            started = time.perf_counter()
            for body, headers, _ in batch:
                response = await http.post(PATH, content=body, headers=headers)
                assert response.status_code in (200, 202), response.text
            elapsed = time.perf_counter() - started
            rows.append((f"webhooks, back to back ({label})", str(len(batch)),
                         f"{len(batch) / elapsed:,.0f}", "", "", ""))  # fmt: skip
        # Latency: the other half, paced, with the publisher running: a tenth at a tenth of
        # the rate (a busy organisation), the rest at the full rate.
        paced = sent[len(sent) // 2 :]
        split = len(paced) // 10
        for pace, batch in ((rate / 10, paced[:split]), (rate, paced[split:])):
            latencies = await _paced(http, publisher, batch, pace)
            rows.append(_latency_row(f"webhooks at {pace:,.0f}/s → /metrics", latencies))
    # Baseline: polling at a random phase sees a completion at the next poll, shows it at the
    # next render (no API or render time added: a lower bound for polling).
    phase = random.Random(seed).uniform(0, POLL_INTERVAL)
    polled = [POLL_INTERVAL - ((stopped - phase) % POLL_INTERVAL) for _, _, stopped in paced]
    rows.append(_latency_row(f"polling every {POLL_INTERVAL:.0f} s (baseline)", polled))
    series = publisher.rendered.series
    print(
        f"\n{len(world.projects)} simulated projects + {padding} synthetic ones: {series} series, "
        f"load average {load_average()}\n"
    )
    _print(rows)


async def _paced(
    http: httpx.AsyncClient,
    publisher: TimedPublisher,
    batch: list[tuple[bytes, dict[str, str], float]],
    rate: float,
) -> list[float]:
    accepted: list[tuple[float, float]] = []
    publisher.renders = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(publisher.run)
        begin = time.perf_counter()
        for n, (body, headers, _) in enumerate(batch):
            await anyio.sleep(max(0.0, begin + n / rate - time.perf_counter()))
            t_sent = time.perf_counter()
            await http.post(PATH, content=body, headers=headers)
            accepted.append((t_sent, time.perf_counter()))
        await anyio.sleep(2 * PUBLISH_GAP + 1.0)
        tg.cancel_scope.cancel()
    latencies = []
    for t_sent, t_applied in accepted:
        shown = next(end for start, end in publisher.renders if start >= t_applied)
        latencies.append(shown - t_sent)
    return latencies


def _latency_row(label: str, values: list[float]) -> tuple[str, str, str, str, str, str]:
    ms = [v * 1000 for v in values]
    return (label, str(len(ms)), "", f"{statistics.median(ms):,.1f}",
            f"{percentile(ms, 0.99):,.1f}", f"{max(ms):,.1f}")  # fmt: skip


def _print(rows: list[tuple[str, str, str, str, str, str]]) -> None:
    header = ("path", "events", "events/s", "p50 ms", "p99 ms", "max ms")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(row, widths, strict=True))))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--rate", type=float, default=1000.0, help="paced deliveries per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--padding",
        type=int,
        default=50,
        help="synthetic projects for the large state (0: skip that run)",
    )
    args = parser.parse_args()
    anyio.run(bench, args.events, args.rate, args.seed, 0)
    if args.padding:
        anyio.run(bench, args.events, args.rate, args.seed, args.padding)


if __name__ == "__main__":
    main()
