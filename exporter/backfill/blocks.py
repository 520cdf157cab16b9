"""The OpenMetrics file → TSDB blocks, with promtool, one two-hour window at a time.

`promtool tsdb create-blocks-from openmetrics` writes one block per two hours and parses the
whole input again for each block (measured with Prometheus 2.42: 2 days of a project took
12.6 s, 8 days 152 s). Cut into one file per block window, the same samples are parsed about
twice in all, so 90 days take minutes instead of days. Cutting keeps each series in one piece
and in time order, because the input is ordered so.
"""

from __future__ import annotations

import resource
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

BLOCK_MS = 2 * 3600 * 1000  # promtool's block length, windows aligned on multiples of it
_SPARE_FILES = 64


class BlocksError(Exception):
    """promtool could not run or failed; the message says why in one line."""


def _file_budget() -> int:
    """How many window files may be open at once: the soft limit raised to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = 65536 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return max(16, soft - _SPARE_FILES)


def split_by_block(openmetrics: Path, directory: Path) -> list[Path]:
    """One OpenMetrics file per block window that has samples, each with the headers of its
    families and `# EOF`; in window order. Reads the input once per `_file_budget()` windows."""
    budget = _file_budget()
    windows = sorted(_windows(openmetrics))
    written: list[Path] = []
    for first in range(0, len(windows), budget):
        group = set(windows[first : first + budget])
        written += _cut(openmetrics, directory, group)
    return written


def _windows(openmetrics: Path) -> set[int]:
    with openmetrics.open() as lines:
        return {_window(line) for line in lines if not line.startswith("#")}


def _window(sample: str) -> int:
    return round(float(sample.rsplit(" ", 1)[1]) * 1000) // BLOCK_MS


def _cut(openmetrics: Path, directory: Path, windows: set[int]) -> list[Path]:
    files: dict[int, TextIO] = {}
    headed: dict[int, int] = {}  # the family each window file has last written the header of
    header, family = "", 0
    try:
        for line in _lines(openmetrics):
            if line.startswith("#"):
                if line.startswith("# HELP "):
                    header, family = line, family + 1
                elif line.startswith("# TYPE "):
                    header += line
                continue
            window = _window(line)
            if window not in windows:
                continue
            out = files.get(window)
            if out is None:
                out = files[window] = (directory / f"{window:012d}.om").open("w")
            if headed.get(window) != family:
                out.write(header)
                headed[window] = family
            out.write(line)
    finally:
        for out in files.values():
            out.write("# EOF\n")
            out.close()
    return [directory / f"{window:012d}.om" for window in sorted(files)]


def _lines(path: Path) -> Iterator[str]:
    with path.open() as lines:
        yield from lines


def windows_dir(openmetrics: Path) -> Path:
    """Where the window files of `openmetrics` go: `FILE.om.windows/`."""
    return openmetrics.with_name(openmetrics.name + ".windows")


def split_beside(openmetrics: Path) -> list[Path]:
    """Cut `openmetrics` into `FILE.om.windows/`, emptied first; the window files in order."""
    directory = windows_dir(openmetrics)
    directory.mkdir(exist_ok=True)
    for stale in directory.glob("*.om"):
        stale.unlink()
    return split_by_block(openmetrics, directory)


def create_blocks(promtool: str, openmetrics: Path, data_dir: Path) -> int:
    """`promtool tsdb create-blocks-from openmetrics` for each block window of the file, into
    `data_dir`; returns how many blocks were written."""
    data_dir.mkdir(parents=True, exist_ok=True)
    parts = split_beside(openmetrics)
    try:
        for part in parts:
            _promtool(promtool, part, data_dir)
            part.unlink()
    finally:
        for leftover in parts:
            leftover.unlink(missing_ok=True)
        windows_dir(openmetrics).rmdir()
    return len(parts)


def _promtool(promtool: str, part: Path, data_dir: Path) -> None:
    command = [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(part)]
    command.append(str(data_dir))
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as err:
        raise BlocksError(f"--promtool-dir: cannot run {promtool}: {err.strerror}") from None
    if result.returncode != 0:
        detail = " ".join((result.stderr or result.stdout).split())[-300:]
        raise BlocksError(f"promtool failed ({result.returncode}) on {part.name}: {detail}")
