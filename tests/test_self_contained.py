"""The repository stands alone: nothing it tracks reads or cites a folder outside it, and every
citation of docs/circleci-api.md names a section that exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
API_DOC = ROOT / "docs" / "circleci-api.md"

# A sibling folder of the checkout, or a path that only exists on one machine.
_OUTSIDE = re.compile(
    r"\.\./shared\b|(?<![\w./-])shared/(?:design|circleci)/"
    r"|(?<![\w.~-])/(?:work|home|root|Users)/[\w.-]"
)
# `docs/circleci-api.md §Rate limits`, or `circleci-api.md §Pagination` when the line is short.
_CITATION = re.compile(r"circleci-api\.md §")
_SECTION = re.compile(r"^## \d+\. (.+)$", re.MULTILINE)
_OLD_NOTES = re.compile(r"api-notes")


def tracked_text_files() -> list[Path]:
    """Files git tracks or would track (untracked but not ignored), read as text."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    files = []
    for name in filter(None, listed):
        path = ROOT / name
        if path.is_file() and b"\0" not in path.read_bytes()[:8192]:
            files.append(path)
    return files


def test_the_file_list_is_real() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in tracked_text_files()}
    assert {"README.md", "pyproject.toml", "tests/test_self_contained.py"} <= names


def test_the_pattern_catches_what_it_must() -> None:
    bad_paths = ["../shared/design/metrics.md", "(shared/design/metrics.md)", "/work/shared/x"]
    for bad in [*bad_paths, '"/home/dev/ci"', "/root/.cache"]:
        assert _OUTSIDE.search(bad), bad
    for fine in ["https://example.com/work/x", "docs/work/notes", "~/work/x", "/metrics"]:
        assert not _OUTSIDE.search(fine), fine


def test_nothing_reads_or_cites_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in tracked_text_files()
        if path.resolve() != Path(__file__).resolve()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if _OUTSIDE.search(line)
    ]
    assert not offenders, "\n".join(offenders)


def test_no_citation_of_the_old_api_notes() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in tracked_text_files()
        if path.resolve() != Path(__file__).resolve()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if _OLD_NOTES.search(line)
    ]
    assert not offenders, "\n".join(offenders)


def api_doc_sections() -> list[str]:
    return _SECTION.findall(API_DOC.read_text())


def citations() -> list[pytest.ParameterSet]:
    """(text after the §) for every citation of docs/circleci-api.md, named by file and line."""
    found = []
    for path in tracked_text_files():
        text = path.read_text(errors="replace")
        for match in _CITATION.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            where = f"{path.relative_to(ROOT)}:{line}"
            found.append(pytest.param(where, text[match.end() : match.end() + 60], id=where))
    return found


def test_the_api_doc_has_its_sections() -> None:
    sections = api_doc_sections()
    assert {"Pagination", "Rate limits", "Webhook signatures", "Live departures"} <= set(sections)
    assert len(sections) == len(set(sections))


@pytest.mark.parametrize(("where", "after"), citations())
def test_every_citation_names_a_section(where: str, after: str) -> None:
    # The longest name first, so `Insights freshness` is not read as `Insights`.
    sections = sorted(api_doc_sections(), key=len, reverse=True)
    assert any(after.startswith(name) for name in sections), (
        f"{where}: `§{after[:30]}...` is not a section of docs/circleci-api.md"
    )


def test_many_comments_cite_the_api_doc() -> None:
    assert len(citations()) >= 50
