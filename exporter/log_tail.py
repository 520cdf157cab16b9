"""What a step-log reader hands the web layer: the contract between `exporter.collect.step_logs`
(which reads logs through the client) and the on-call pages (which only show them), so that
neither imports the other; the composition root passes the reader in."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LogTail:
    lines: tuple[str, ...]  # the last lines kept, as plain text (the web layer escapes them)
    source: str  # "output_url" or "private"


class LogUnavailable(Exception):
    """No source gave the log; the message is one line, safe to show."""
