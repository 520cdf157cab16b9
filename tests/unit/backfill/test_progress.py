"""Progress: a bar redrawn in place on a terminal, one plain line per workflow otherwise."""

from __future__ import annotations

import io

from exporter.backfill.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_bar_redrawn_in_place() -> None:
    stream = Terminal()
    progress = Progress(4, stream, already_done=1)
    progress.advance("gh/acme/api main build", 10, 40, 12)
    progress.finish()
    text = stream.getvalue()
    assert text.startswith("\r[") and text.endswith("\n") and text.count("\n") == 1
    assert "2/4 workflows, 12 requests" in text
    assert "#" * 15 + "-" * 15 in text  # half done


def test_logs_get_one_plain_line_per_workflow() -> None:
    stream = io.StringIO()
    progress = Progress(2, stream)
    progress.advance("gh/acme/api main build", 10, 40, 12)
    progress.advance("gh/acme/api main deploy", 3, 6, 15)
    progress.finish()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in stream.getvalue()
    assert lines[0].startswith("backfill: 1/2 gh/acme/api main build: 10 runs, 40 job runs")
    assert "(15 requests" in lines[1]
