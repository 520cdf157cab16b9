"""docs/metrics.md is generated from the catalog, and the catalog honours the contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exporter.metrics import docs
from exporter.metrics.catalog import BY_NAME

ROOT = Path(__file__).resolve().parents[3]
CONTRACT = ROOT.parent / "shared" / "design" / "metrics.md"
_ROW = re.compile(r"^\| `(circleci_[a-z_]+)` \| ([a-z ()]+?) \| ([a-z_, ]+) \|")


def test_docs_metrics_md_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "metrics.md").read_text()
    assert committed == docs.render(), "run: python -m exporter.metrics.docs > docs/metrics.md"


def contract_rows() -> list[tuple[str, str, tuple[str, ...]]]:
    """Rows of the contract that name one family with an explicit label list."""
    rows = []
    for line in CONTRACT.read_text().splitlines():
        match = _ROW.match(line)
        labels = tuple(label.strip() for label in match[3].split(",")) if match else ()
        if match and labels != ("same",):  # "same" rows repeat the labels of the row above
            rows.append((match[1], match[2].strip(), labels))
    return rows


def test_contract_is_readable() -> None:
    assert len(contract_rows()) >= 25


@pytest.mark.parametrize(("name", "kind", "labels"), contract_rows(), ids=lambda v: str(v))
def test_family_matches_the_contract(name: str, kind: str, labels: tuple[str, ...]) -> None:
    family = BY_NAME.get(name)
    assert family is not None, f"{name} is in the contract but not exposed"
    assert set(family.labels) == set(labels)
    expected_type = kind.split(" ")[0]
    assert family.prometheus_type == expected_type
    if "state set" in kind:
        assert family.kind == "stateset"
