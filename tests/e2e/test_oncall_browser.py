"""The on-call page in a real browser: headless Chromium against `circleci-exporter --demo`,
whose simulated organisation has red default branches. Checks the DOM Chromium built (the red
row, the failing step, the log lines, the links) and takes a screenshot.

`OCEAN_CI_UPDATE_SCREENSHOT=1` also copies the screenshot to docs/img/oncall.png (the README's).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import running_demo
from tests.rules.binaries import find_binary, wait_until

ROOT = Path(__file__).resolve().parents[2]
# Flags for a sandboxed CI machine: no GPU, no network of its own, no first-run or sync chatter.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1400,1000",
]  # fmt: skip


class _Dom(HTMLParser):
    """Links and the text of the red rows, from Chromium's serialised DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, bool]] = []  # (href, inside <main>)
        self.red_rows = 0
        self._depth_main = 0
        self._in_red = 0
        self.red_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "main":
            self._depth_main += 1
        if tag == "tr" and values.get("class") == "red":
            self.red_rows += 1
            self._in_red += 1
        if tag == "a":
            self.links.append((values.get("href") or "", self._depth_main > 0))

    def handle_endtag(self, tag: str) -> None:
        if tag == "main":
            self._depth_main -= 1
        if tag == "tr" and self._in_red:
            self._in_red -= 1

    def handle_data(self, data: str) -> None:
        if self._in_red:
            self.red_text.append(data)


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = find_binary("chromium", "chromium-browser")
    return subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _red_with_log(base: str) -> dict[str, Any] | None:
    """The first red default branch whose failing job's log lines are in, if any yet."""
    body = httpx.get(f"{base}/api/v1/failures", timeout=30.0).json()
    for red in body["red_default_branches"]:
        if red["failing_jobs"] and red["failing_jobs"][0]["log_lines"]:
            return dict(red)
    return None


def test_on_call_page_in_headless_chromium(tmp_path: Path) -> None:
    with running_demo(tmp_path) as exporter:
        found: list[dict[str, Any]] = []

        def red_row_ready() -> bool:
            red = _red_with_log(exporter.url)
            if red is not None:
                found.append(red)
            return red is not None

        # The demo moves fast (an hour per minute): a branch red in the JSON may have been
        # repaired by the time Chromium loads the page. Then take the next red one.
        for attempt in range(3):
            found.clear()
            wait_until(red_row_ready, "a red default branch with its log lines", timeout=60.0)
            red = found[-1]
            job = red["failing_jobs"][0]
            dump = _chromium(tmp_path / f"profile-dom-{attempt}", "--dump-dom", f"{exporter.url}/")
            assert dump.returncode == 0, dump.stderr
            if f"{job['job']} #{job['job_number']}" in dump.stdout:
                break
        shot = tmp_path / "oncall.png"
        screenshot = _chromium(
            tmp_path / "profile-shot", f"--screenshot={shot}", f"{exporter.url}/"
        )
        assert screenshot.returncode == 0, screenshot.stderr

    dom_html = dump.stdout
    dom = _Dom()
    dom.feed(dom_html)
    assert 'id="demo-banner"' in dom_html
    assert dom.red_rows >= 1
    red_text = "".join(dom.red_text)
    assert red["project_name"] in red_text and red["workflow"] in red_text
    assert job["step"] and job["step"] in red_text
    assert f"{job['job']} #{job['job_number']}" in red_text
    # The red branch's last log lines (the page may have a newer snapshot: any red row's will do,
    # but this one was red seconds ago and red branches stay red for a while in the demo).
    last_line = next(line for line in reversed(job["log_lines"]) if line.strip())
    assert escape(last_line, quote=False) in dom_html
    assert "<details open" in dom_html
    # Every link of the page's content points at CircleCI; the header's go to the exporter.
    content_links = [href for href, in_main in dom.links if in_main]
    assert content_links
    assert all(href.startswith("https://app.circleci.com/") for href in content_links)
    assert {href for href, in_main in dom.links if not in_main} == {
        "/metrics", "/api/v1/failures", "/healthz", "/readyz"
    }  # fmt: skip

    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000
    if os.environ.get("OCEAN_CI_UPDATE_SCREENSHOT") == "1":
        target = ROOT / "docs" / "img" / "oncall.png"
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, target)
