"""docs/metrics.md is generated from the catalog and lists every family, type and label."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import pytest

from exporter.catalog import ALL, Family
from exporter.metrics import docs

ROOT = Path(__file__).resolve().parents[3]
METRICS_MD = ROOT / "docs" / "metrics.md"
# | `name` | type | `label`, `label` | meaning |
_ROW = re.compile(
    r"^\| `(?P<name>circleci_[a-z0-9_]+)` \| (?P<kind>[^|]+?) \| (?P<labels>[^|]+?) \|"
)


class DocumentedFamily(NamedTuple):
    prometheus_type: str
    kind: str
    labels: tuple[str, ...]


def documented() -> dict[str, DocumentedFamily]:
    """The rows of docs/metrics.md, read as a user reads them, without the generator."""
    rows: dict[str, DocumentedFamily] = {}
    for line in METRICS_MD.read_text().splitlines():
        match = _ROW.match(line)
        if match is None:
            continue
        assert match["name"] not in rows, f"{match['name']} is documented twice"
        labels = tuple(label.strip(" `") for label in match["labels"].split(","))
        kind = match["kind"].strip()
        rows[match["name"]] = DocumentedFamily(
            prometheus_type=kind.split(" ")[0], kind=kind, labels=() if labels == ("—",) else labels
        )
    return rows


def test_docs_metrics_md_is_up_to_date() -> None:
    assert METRICS_MD.read_text() == docs.render(), (
        "run: python -m exporter.metrics.docs > docs/metrics.md"
    )


@pytest.mark.parametrize("family", ALL, ids=lambda f: f.name)
def test_every_family_is_documented_with_its_type_and_labels(family: Family) -> None:
    row = documented().get(family.name)
    assert row is not None, f"{family.name} is in the catalog but not in docs/metrics.md"
    assert row.labels == family.labels
    assert row.prometheus_type == family.prometheus_type
    assert ("state set" in row.kind) == (family.kind == "stateset")
    assert ("info" in row.kind) == (family.kind == "info")


def test_docs_list_nothing_the_catalog_lacks() -> None:
    assert set(documented()) == {family.name for family in ALL}
