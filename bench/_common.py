"""What the benchmarks share: the results table, percentiles, RSS, the parameters line."""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Row:
    """One line of a results table; `verdict` is "ok", "MISS" or "-" (no target, context only)."""

    target: str
    measured: str
    verdict: str = "-"


def verdict(passed: bool) -> str:
    return "ok" if passed else "MISS"


def print_table(title: str, rows: Sequence[Row]) -> None:
    """A Markdown table, so that it can be pasted into bench/README.md as it is."""
    header = Row("target", "measured", "verdict")
    widths = [max(len(getattr(r, f)) for r in (header, *rows)) for f in Row.__dataclass_fields__]
    print(f"\n### {title}\n")
    for i, row in enumerate((header, *rows)):
        fields = zip(Row.__dataclass_fields__, widths, strict=True)
        cells = [getattr(row, f).ljust(w) for f, w in fields]
        print("| " + " | ".join(cells) + " |")
        if i == 0:
            print("| " + " | ".join("-" * w for w in widths) + " |")
    print()


def print_parameters(name: str, args: argparse.Namespace, hidden: tuple[str, ...] = ()) -> None:
    """The command line's effective parameters and the machine, so a result can be reproduced."""
    params = " ".join(
        f"--{k.replace('_', '-')}={v}" for k, v in sorted(vars(args).items()) if k not in hidden
    )
    print(f"# {name} {params}")
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M %Z')}, Python {platform.python_version()}, "
        f"{platform.machine()}, {_cpus()} CPUs, {_cpu_model()}"
    )


def spread(values: Sequence[float], fmt: str) -> str:
    """Several runs' results as "median (min .. max)", each formatted with `fmt`."""
    middle, low, high = statistics.median(values), min(values), max(values)
    return f"{middle:{fmt}} ({low:{fmt}} .. {high:{fmt}})"


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (no interpolation): p99 of 200 samples is the 198th smallest."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size in MB (VmRSS of /proc/<pid>/status)."""
    return _status_kb(pid, "VmRSS") / 1024


def peak_rss_mb(pid: int | str = "self") -> float:
    """The highest resident set size so far (VmHWM)."""
    return _status_kb(pid, "VmHWM") / 1024


def _status_kb(pid: int | str, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return float(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


def _cpus() -> int:
    return os.cpu_count() or 1


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: how busy the machine was during a run."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
