"""The start-up history read: what the watch needs of runs that completed before it began.

At start-up the collector meets runs that completed before the watch began. They are never
counted (see `exporter.state`), but each series' newest one sets its `last_*` gauges, and
its failure streak needs every run back to the last non-failure. `StartupHistory` decides
which of those runs are worth a job read, and, once the recent pipelines are read, reads
further back on each tracked branch whose history is still incomplete.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from exporter.circleci import CircleCIClient, models
from exporter.collect.branches import BranchPolicy, Placement
from exporter.state.keys import BranchWorkflowKey
from exporter.state.statuses import FAILURES

# How deep the branch-filtered history read goes for a branch whose last completed runs are
# not in the recent history: 10 pages of 20 pipelines.
HISTORY_PIPELINES = 200


class StartupHistory:
    def __init__(self) -> None:
        self.done = False
        # Series whose newest completed run's jobs (and tests) were read.
        self._jobs_read: set[BranchWorkflowKey] = set()
        # Series whose failure streak reached a non-failure, and every series met.
        self._streak_known: set[BranchWorkflowKey] = set()
        self._streak_seen: set[BranchWorkflowKey] = set()

    def wants_jobs(self, place: Placement, workflow: str, status: str) -> bool:
        """Note a workflow run that completed before the watch began; True when its jobs are
        worth reading. Runs arrive newest first, and only the newest run of each series of a
        tracked branch matters for the gauges: nothing of a folded branch's history is shown."""
        series = BranchWorkflowKey(place.label, workflow)
        self._streak_seen.add(series)
        if status not in FAILURES:
            self._streak_known.add(series)
        if place.folded or series in self._jobs_read:
            return False
        self._jobs_read.add(series)
        return True

    def _incomplete(self, branch: str) -> bool:
        seen = [s for s in self._streak_seen if s.branch == branch]
        return not seen or any(s not in self._streak_known for s in seen)

    async def read_back(
        self,
        client: CircleCIClient,
        slug: str,
        policy: BranchPolicy,
        read_page: Callable[[list[models.Pipeline]], Awaitable[None]],
    ) -> None:
        """Read further back, a page at a time (`read_page` reads the pipelines not yet known),
        on each tracked branch whose recent history does not show every workflow's last
        completed status and where its failure streak began. Raises CircleCIError like any
        read: then it runs again next cycle."""
        for branch in policy.literal_branches():
            if not self._incomplete(branch):
                continue
            read = 0
            async for page in client.iter_project_pipeline_pages(slug, branch=branch):
                await read_page(page)
                read += len(page)
                if read >= HISTORY_PIPELINES or not self._incomplete(branch):
                    break
        self.done = True
