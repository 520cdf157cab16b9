"""Which branches of a project are tracked, and under which `branch` label."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from exporter.settings import EffectiveBranchRules

DEFAULT = "default"  # in `branches:`, the project's default branch, whatever its name
OTHER = "other"  # the label of folded branches
TAGS = "tags"  # the label of tag pipelines, with `tags: true`
_GLOB = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class Placement:
    label: str
    folded: bool


class BranchPolicy:
    def __init__(self, rules: EffectiveBranchRules, default_branch: str | None) -> None:
        self.rules = rules
        self.default_branch = default_branch
        self._patterns = [default_branch if p == DEFAULT else p for p in rules.branches]
        # One Placement per ref, shared by every tracked pipeline of that ref (bench/memory.py).
        # Bounded by the refs seen while this policy lives (until the project is read again).
        self._placed: dict[tuple[str | None, str | None], Placement | None] = {}

    def place(self, branch: str | None, tag: str | None) -> Placement | None:
        """Where a pipeline's runs go; None when they are dropped."""
        ref = (branch, tag)
        if ref not in self._placed:
            self._placed[ref] = self._place(branch, tag)
        return self._placed[ref]

    def _place(self, branch: str | None, tag: str | None) -> Placement | None:
        if branch is None:
            return Placement(TAGS, False) if tag is not None and self.rules.tags else None
        if any(p is not None and fnmatch.fnmatchcase(branch, p) for p in self._patterns):
            return Placement(branch, False)
        return Placement(OTHER, True) if self.rules.other_branches == "fold" else None

    def literal_branches(self) -> list[str]:
        """Tracked branches named outright (no glob): the ones worth a branch-filtered history
        read when the recent history does not show their last completed runs."""
        return [p for p in self._patterns if p is not None and not (_GLOB & set(p))]
