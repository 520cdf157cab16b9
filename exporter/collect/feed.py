"""The org change feed (issue 15): one read of an org's pipeline feed per cycle tells which
tracked projects have new pipelines, so that a quiet project costs no request.

`GET /pipeline?org-slug=` lists the pipelines of the org's most recently built projects (at
most 250) that the token's user follows, newest first (docs/circleci-api.md §Pipelines). An
`OrgFeed` reads it from the top down to the first pipeline an earlier read listed, and returns
what is new. It also keeps what a project collector asks before it skips its own list read
(`covers`), and what tells a project the feed does not show (`should_have_listed`).

Reads and project list reads are ordered by `ticket()`, a process-wide counter, not by a clock:
the feed covers a project once a read that *finished* before the project's last list read
*started* established where the feed's unbroken run of complete reads begins. Everything created
after that list read is then above the top of that feed read, and the feed lists it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from exporter.circleci import CircleCIClient, models

# "the most recently built projects (max 250)" (docs/circleci-api.md §Pipelines).
FEED_PROJECT_WINDOW = 250
# Ids of the newest pipelines listed, kept to find where the next read stops: more than one
# page, so that a few deleted pipelines at the top do not make a read page to its bound.
_REMEMBERED_IDS = 100

OverflowReason = Literal["pages", "window"]

_tickets = itertools.count(1)


def ticket() -> int:
    """A number larger than any handed out before: orders feed reads and list reads."""
    return next(_tickets)


@dataclass(frozen=True, slots=True)
class FeedRead:
    """One read of an org feed: the pipelines above the first known one, newest first (every
    project's, tracked or not), and why the read could not reach a known one, if it could not."""

    new: list[models.Pipeline]
    overflow: OverflowReason | None = None


class OrgFeed:
    def __init__(self, org: str, *, max_pages: int, fresh_for: float) -> None:
        self.org = org
        self.max_pages = max_pages
        # A project relies on the feed only while its last complete read is this recent
        # (clock seconds): a feed that keeps failing sends every project back to its list.
        self.fresh_for = fresh_for
        self._recent: dict[str, None] = {}  # ids, oldest first (insertion order)
        self._primed = False
        self.covered_since: int | None = None  # ticket at the end of the read that began it
        self.read_at: float | None = None
        # Pipelines created after `_watched_from` (None: any) and before `_horizon` were
        # listed by complete reads, if their project is in the feed.
        self._watched_from: datetime | None = None
        self._horizon: datetime | None = None

    async def read(self, client: CircleCIClient, now: float) -> FeedRead:
        """Read the feed down to the first pipeline listed before. A first read takes one page:
        the projects read their own lists first, so the feed only has to mark where it starts.
        Raises CircleCIError; nothing changes then, and the next read covers more."""
        new: list[models.Pipeline] = []
        overflow: OverflowReason | None = None
        pages = 0
        async for page in client.iter_org_pipeline_pages(self.org):
            pages += 1
            reached_known = False
            for pipeline in page:
                if pipeline.id in self._recent:
                    reached_known = True
                    break
                new.append(pipeline)
            if reached_known or not self._primed:
                break
            if pages >= self.max_pages:
                overflow = "pages"
                break
        if overflow is None and len({p.project_slug.lower() for p in new}) >= FEED_PROJECT_WINDOW:
            # As many projects built as the feed shows: one more may have been left out.
            overflow = "window"
        self._record(new, overflow, now)
        return FeedRead(new, overflow)

    def _record(
        self, new: list[models.Pipeline], overflow: OverflowReason | None, now: float
    ) -> None:
        for pipeline in reversed(new):
            self._recent[pipeline.id] = None
        for stale in list(
            itertools.islice(self._recent, max(0, len(self._recent) - _REMEMBERED_IDS))
        ):
            del self._recent[stale]
        if new and (self._horizon is None or new[0].created_at > self._horizon):
            self._horizon = new[0].created_at
        if not self._primed or overflow is not None:
            # What lies below this read's top is not (or no longer) known to be listed: the
            # run of complete reads starts again here, and every project reads its list once.
            self.covered_since = ticket()
            self._watched_from = new[0].created_at if new else self._watched_from
        self._primed = True
        self.read_at = now

    def covers(self, listed: int | None, now: float) -> bool:
        """The feed lists every pipeline created after a list read that started at ticket
        `listed`, and it was read lately."""
        return (
            listed is not None
            and self.covered_since is not None
            and self.covered_since < listed
            and self.read_at is not None
            and now - self.read_at <= self.fresh_for
        )

    def should_have_listed(self, created_at: datetime) -> bool:
        """A pipeline created then was listed by a complete read, if its project is in the
        feed: a project whose list shows one the feed never delivered is not in the feed."""
        return (
            self._horizon is not None
            and created_at < self._horizon
            and (self._watched_from is None or created_at > self._watched_from)
        )
