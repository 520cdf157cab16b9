"""What a backfill costs: API requests, elapsed time against the rate-limit bound, memory.

The simulator runs in this process on the real clock at speed 1 with `--days` of history for
`--projects` projects. `circleci-exporter backfill --since <days>d` runs as a child process
with the default rate limit (api.requests_per_second 10, burst 20) unless told otherwise:
first `--dry-run` (its request estimate), then for real. The simulator counts the requests it
served. The rate-limit bound is (requests - burst) / rate: no client can be faster. The naive
baseline for memory is a writer that builds the file in memory before writing it: it needs at
least the file's size, which grows with the range, the step and the series; the streamed
writer's peak should not.

The output at `--step 5m` for 20 projects x 90 days is tens of gigabytes of text (Prometheus
compresses it to little), so the default `--step 1h` keeps the run short; the table scales the
size to 5m. Memory and requests do not depend on the step.

    .venv/bin/python bench/backfill.py [--projects 20] [--days 90] [--step 1h]
"""

from __future__ import annotations

import argparse
import re
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import anyio
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Row, print_parameters, print_table, verdict

from exporter.durations import parse_duration
from exporter.simulator import RunningSimulator, SimConfig

EXPORTER = Path(sys.executable).parent / "circleci-exporter"
TOKEN = "CCIPAT_bench-backfill-0123456789"
ELAPSED_TARGET = 1.2  # x the rate-limit bound


def requests_served(sim: RunningSimulator) -> int:
    total = sim.stats()["requests_total"]
    assert isinstance(total, int)
    return total


async def backfill(arguments: list[str], env: dict[str, str]) -> tuple[float, str, str]:
    started = time.monotonic()
    result = await anyio.run_process([str(EXPORTER), "backfill", *arguments], env=env, check=False)
    elapsed = time.monotonic() - started
    stdout, stderr = result.stdout.decode(), result.stderr.decode()
    if result.returncode != 0:
        raise SystemExit(f"backfill failed ({result.returncode}):\n{stderr}")
    return elapsed, stdout, stderr


async def main(args: argparse.Namespace) -> None:
    config = SimConfig(
        projects=args.projects, seed=args.seed, speed=1.0, history=timedelta(days=args.days),
        token=TOKEN,
    )  # fmt: skip
    generating = time.monotonic()
    async with RunningSimulator(config) as sim:
        print(f"# simulator: {time.monotonic() - generating:.0f}s to generate the history")
        with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
            work = Path(tmp)
            settings = {
                "projects": [{"slug": p.slug} for p in sim.world.projects],
                "api": {"requests_per_second": args.rps, "burst": args.burst},
            }
            (work / "config.yml").write_text(yaml.safe_dump(settings))
            env = {
                "CIRCLECI_TOKEN": TOKEN,
                "CIRCLECI_API_URL": sim.api_url,
                "PATH": "/usr/bin:/bin",
            }
            common = ["--config", str(work / "config.yml"), "--since", f"{args.days}d",
                      "--step", args.step, "--out", str(work / "history.om")]  # fmt: skip
            before = requests_served(sim)
            _, printed, _ = await backfill([*common, "--dry-run"], env)
            planned = requests_served(sim) - before
            estimate = int(re.findall(r"~(\d+) requests \(", printed)[-1])
            before = requests_served(sim)
            elapsed, _, log = await backfill(common, env)
            made = requests_served(sim) - before
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
            size = (work / "history.om").stat().st_size
    workflows = int(re.findall(r"(\d+) workflows", log)[-1])
    bound = max(made - args.burst, 0) / args.rps
    ratio = elapsed / bound if bound else float("nan")
    at_5m = size * parse_duration(args.step) / 300.0
    print(f"# {workflows} workflows; the plan read {planned} summaries; {log.splitlines()[-1]}")
    print_table(
        f"backfill: {args.projects} projects x {args.days} days at {args.rps:g} requests/s",
        [
            Row("requests: dry-run estimate", f"{estimate}"),
            Row("requests made (simulator's count)", f"{made} ({made / workflows:.0f}/workflow)"),
            Row("rate-limit bound (requests - burst) / rate", f"{bound:.0f} s"),
            Row(
                f"elapsed <= {ELAPSED_TARGET} x bound",
                f"{elapsed:.0f} s = {ratio:.2f} x bound",
                verdict(ratio <= ELAPSED_TARGET),
            ),
            Row(f"output at --step {args.step}", f"{size / 1e6:.0f} MB"),
            Row("output at --step 5m (scaled)", f"{at_5m / 1e9:.1f} GB"),
            Row(
                "memory peak (RSS) < naive in-memory file at 5m",
                f"{peak / 1e6:.0f} MB vs >= {at_5m / 1e6:.0f} MB",
                verdict(peak < at_5m),
            ),
        ],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--step", default="1h")
    parser.add_argument("--rps", type=float, default=10.0, help="api.requests_per_second")
    parser.add_argument("--burst", type=int, default=20, help="api.burst")
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    print_parameters("bench/backfill.py", arguments)
    anyio.run(main, arguments)
