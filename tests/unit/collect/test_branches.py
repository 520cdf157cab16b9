"""Which pipelines are tracked, folded or dropped."""

from __future__ import annotations

import pytest

from exporter.collect.branches import BranchPolicy, Placement
from exporter.settings import EffectiveBranchRules


def policy(branches: list[str], other: str = "drop", tags: bool = False) -> BranchPolicy:
    rules = EffectiveBranchRules(branches=branches, other_branches=other, tags=tags)  # type: ignore[arg-type]
    return BranchPolicy(rules, default_branch="main")


@pytest.mark.parametrize(
    ("branch", "placement"),
    [
        ("main", Placement("main", False)),
        ("release/1.2", Placement("release/1.2", False)),
        ("release", None),
        ("feature/x", None),
    ],
)
def test_default_and_globs_are_tracked_others_dropped(
    branch: str, placement: Placement | None
) -> None:
    assert policy(["default", "release/*"]).place(branch, None) == placement


def test_other_branches_fold_into_other() -> None:
    assert policy(["default"], other="fold").place("feature/x", None) == Placement("other", True)
    assert policy(["default"], other="fold").place("main", None) == Placement("main", False)


def test_tag_pipelines_are_ignored_unless_tags_true() -> None:
    assert policy(["default"]).place(None, "v1.0.0") is None
    assert policy(["default"], tags=True).place(None, "v1.0.0") == Placement("tags", False)
    assert policy(["default"], other="fold").place(None, "v1.0.0") is None


def test_default_means_the_projects_default_branch_whatever_its_name() -> None:
    rules = EffectiveBranchRules(branches=["default"])
    assert BranchPolicy(rules, "trunk").place("trunk", None) == Placement("trunk", False)
    assert BranchPolicy(rules, "trunk").place("main", None) is None
    assert BranchPolicy(rules, None).place("main", None) is None


def test_literal_branches_are_the_ones_named_outright() -> None:
    assert policy(["default", "release/*", "develop"]).literal_branches() == ["main", "develop"]
