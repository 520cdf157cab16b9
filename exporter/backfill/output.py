"""The OpenMetrics file, streamed: each family's samples go to its own part file as targets are
rebuilt, and the parts are joined under their HELP/TYPE headers at the end.

OpenMetrics wants each family in one piece while the runs arrive a workflow at a time, so the
parts live on disk, not in memory. The checkpoint records the parts' sizes after each finished
workflow: a resumed run cuts them back to those sizes and goes on.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from exporter.catalog import BY_NAME
from exporter.metrics.exposition import family_header

# The live families a backfill rebuilds, in catalog order.
FAMILIES = (
    "circleci_workflow_runs_total",
    "circleci_workflow_duration_seconds",
    "circleci_workflow_last_completed_status",
    "circleci_workflow_consecutive_failures",
    "circleci_job_runs_total",
    "circleci_job_duration_seconds",
)
_CHECKPOINT_VERSION = 1


class CheckpointMismatch(Exception):
    """The checkpoint belongs to a backfill with other arguments."""


@dataclass
class Checkpoint:
    """How far a backfill got: written after each finished workflow, removed at the end."""

    arguments: dict[str, Any]  # what must match for a resume
    start: float
    end: float
    done: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    version: int = _CHECKPOINT_VERSION

    @classmethod
    def load(cls, path: Path, arguments: Mapping[str, Any]) -> Checkpoint | None:
        """The checkpoint at `path` when there is one; CheckpointMismatch when it was written
        with other arguments."""
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            raise CheckpointMismatch(f"checkpoint {path} is unreadable ({err})") from None
        if not isinstance(data, dict) or data.get("version") != _CHECKPOINT_VERSION:
            raise CheckpointMismatch(f"checkpoint {path} is not a backfill checkpoint")
        if data.get("arguments") != dict(arguments):
            raise CheckpointMismatch(
                f"checkpoint {path} belongs to a backfill with other arguments "
                f"({data.get('arguments')}); rerun with those, or delete it to start over"
            )
        return cls(**data)

    def save(self, path: Path) -> None:
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(asdict(self)))
        os.replace(temporary, path)


class OpenMetricsParts:
    """One append-only part file per family, under `directory`."""

    def __init__(self, directory: Path, sizes: Mapping[str, int]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._files: dict[str, BinaryIO] = {}
        for family in FAMILIES:
            part = directory / f"{family}.om"
            handle = part.open("ab")
            handle.truncate(sizes.get(family, 0))  # drop what an interrupted run left over
            self._files[family] = handle

    def write(self, family: str, lines: list[str]) -> None:
        self._files[family].write("".join(lines).encode())

    def sizes(self) -> dict[str, int]:
        """Flushed sizes: what a checkpoint may vouch for."""
        sizes = {}
        for family, handle in self._files.items():
            handle.flush()
            os.fsync(handle.fileno())
            sizes[family] = os.fstat(handle.fileno()).st_size
        return sizes

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()

    def join(self, out: Path) -> None:
        """Write `out`: each family with samples under its headers, then `# EOF`."""
        self.sizes()
        temporary = out.with_name(out.name + ".tmp")
        with temporary.open("wb") as target:
            for family, handle in self._files.items():
                if os.fstat(handle.fileno()).st_size == 0:
                    continue
                target.write(family_header(BY_NAME[family], openmetrics=True).encode())
                with (self.directory / f"{family}.om").open("rb") as part:
                    shutil.copyfileobj(part, target, 1 << 20)
            target.write(b"# EOF\n")
        os.replace(temporary, out)
        self.close()
        shutil.rmtree(self.directory)
