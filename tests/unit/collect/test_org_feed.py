"""The org feed (collect/feed.py) and a project collector that relies on it, against the small
fake API: where a feed read stops, when it overflows, when it covers a project, and what a
project then reads and does not read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from fake_api import SLUG, FakeCircleCI, client_for

from exporter.circleci import CircleCIClient, CircleCIError
from exporter.collect.feed import FEED_PROJECT_WINDOW, OrgFeed, ticket
from exporter.collect.project import ProjectCollector
from exporter.settings import CollectSettings, EffectiveBranchRules
from exporter.state import Buckets, State

pytestmark = pytest.mark.anyio

T0 = 1_700_000_000.0
FEED = "/pipeline"
LIST = f"/project/{SLUG}/pipeline"


@dataclass
class Rig:
    api: FakeCircleCI
    client: CircleCIClient
    feed: OrgFeed
    collector: ProjectCollector
    state: State
    now: list[float]

    async def read_feed(self) -> list[str]:
        """One feed read, handing this project what it lists, like LiveCollector does."""
        read = await self.feed.read(self.client, self.now[0])
        for pipeline in read.new:
            if pipeline.project_slug == SLUG:
                self.collector.offer(pipeline)
        return [p.id for p in read.new]

    async def cycle(self, advance: float = 30.0) -> list[str]:
        """A feed read, then the project's cycle, `advance` seconds on; the paths requested
        by the project (the feed's own read left out)."""
        self.now[0] += advance
        await self.read_feed()
        self.api.reads()
        await self.collector.cycle()
        return self.api.reads()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    api = FakeCircleCI(page_size=2)
    state = State(watch_start=T0, buckets=Buckets((60.0,), (60.0,), (5.0,)), series_ttl=7 * 86400)
    now = [T0 + 3600]
    settings = CollectSettings(job_details=False, tests=False, failed_steps=False,
                               project_refresh=600.0, org_feed_max_pages=3)  # fmt: skip
    async with client_for(api) as client:
        feed = OrgFeed("gh/acme", max_pages=3, fresh_for=90.0)
        collector = ProjectCollector(SLUG, EffectiveBranchRules(), client=client, state=state,
                                     settings=settings, clock=lambda: now[0])  # fmt: skip
        collector.feed = feed
        yield Rig(api, client, feed, collector, state, now)


def finished(api: FakeCircleCI, n: int) -> None:
    created = T0 + 100 * n
    api.pipeline(f"p{n}", created)
    api.workflow(f"p{n}", f"w{n}", "success", created, created + 50)
    api.job(f"w{n}", f"j{n}", "success", number=n, started=created + 1, stopped=created + 40)


async def test_a_read_stops_at_the_first_pipeline_listed_before(rig: Rig) -> None:
    for n in range(1, 6):
        rig.api.other(f"o{n}", T0 + n)
    assert await rig.read_feed() == ["o5", "o4"]  # a first read marks the top: one page
    rig.api.reads()
    rig.api.other("o6", T0 + 6)
    rig.api.other("o7", T0 + 7)
    assert await rig.read_feed() == ["o7", "o6"]
    assert await rig.read_feed() == []
    # Pages of two: the third read needed one page, the second two (o5 starts the second).
    assert rig.api.reads() == [FEED, FEED, FEED]


async def test_a_burst_past_the_page_bound_overflows_and_covers_only_later_list_reads(
    rig: Rig,
) -> None:
    rig.api.other("o0", T0)
    await rig.read_feed()
    listed_before = ticket()
    for n in range(1, 8):  # seven new pipelines: more than three pages of two
        rig.api.other(f"o{n}", T0 + n)
    read = await rig.feed.read(rig.client, rig.now[0])
    assert read.overflow == "pages"
    assert [p.id for p in read.new] == ["o7", "o6", "o5", "o4", "o3", "o2"]
    assert not rig.feed.covers(listed_before, rig.now[0])
    assert rig.feed.covers(ticket(), rig.now[0])
    # The next read stops at the overflowing read's top: what it skipped is for list reads.
    rig.api.other("o8", T0 + 8)
    assert await rig.read_feed() == ["o8"]


async def test_as_many_projects_as_the_feed_window_is_an_overflow(rig: Rig) -> None:
    rig.api.other("o0", T0)
    await rig.read_feed()
    rig.feed.max_pages = 1000
    rig.api.page_size = 100
    for n in range(FEED_PROJECT_WINDOW):
        rig.api.other(f"o{n + 1}", T0 + n + 1, project=f"gh/acme/p{n}")
    read = await rig.feed.read(rig.client, rig.now[0])
    assert read.overflow == "window"
    assert len(read.new) == FEED_PROJECT_WINDOW


async def test_a_failed_read_changes_nothing_and_a_late_feed_covers_nobody(rig: Rig) -> None:
    rig.api.other("o1", T0 + 1)
    await rig.read_feed()
    listed = ticket()
    assert rig.feed.covers(listed, rig.now[0])
    rig.api.other("o2", T0 + 2)
    rig.api.failing.add(FEED)
    with pytest.raises(CircleCIError):
        await rig.feed.read(rig.client, rig.now[0] + 60)
    rig.api.failing.clear()
    assert rig.feed.covers(listed, rig.now[0] + 90)
    assert not rig.feed.covers(listed, rig.now[0] + 91)  # fresh_for passed: lists again
    assert await rig.read_feed() == ["o2"]


async def test_a_covered_quiet_project_costs_nothing_until_project_refresh(rig: Rig) -> None:
    finished(rig.api, 1)
    first = await rig.cycle()
    assert LIST in first  # a first cycle reads the list
    assert await rig.cycle() == []
    assert await rig.cycle() == []
    rig.now[0] += 600
    assert await rig.cycle() == [LIST]  # project_refresh: the list once
    assert await rig.cycle() == []


async def test_the_feed_hands_over_new_pipelines_without_a_list_read(rig: Rig) -> None:
    finished(rig.api, 1)
    await rig.cycle()
    await rig.cycle()
    finished(rig.api, 2)
    reads = await rig.cycle()
    assert LIST not in reads
    assert reads == ["/pipeline/p2/workflow", "/workflow/w2/job"]
    assert rig.collector.in_feed is True
    snapshot = rig.state.snapshot(rig.now[0])
    assert sum(snapshot.workflow_runs.values()) == 2


async def test_a_list_read_does_not_stop_at_a_pipeline_the_feed_handed_over(rig: Rig) -> None:
    finished(rig.api, 1)
    await rig.cycle()
    # p2 is missed by the feed (its project not followed when it was read); p3 is handed over.
    finished(rig.api, 2)
    rig.api.followed = False
    rig.api.other("o", T0 + 250)
    assert await rig.read_feed() == ["o"]
    rig.api.followed = True
    finished(rig.api, 3)
    await rig.cycle()
    rig.now[0] += 600
    await rig.cycle()  # project_refresh: the list shows p3 (known) above p2 (not)
    snapshot = rig.state.snapshot(rig.now[0])
    assert sum(snapshot.workflow_runs.values()) == 3


async def test_a_project_the_feed_never_lists_is_detected_and_read_every_cycle(
    rig: Rig,
) -> None:
    rig.api.followed = False
    rig.api.other("o1", T0 + 1)
    finished(rig.api, 1)
    await rig.cycle()
    finished(rig.api, 2)  # created at T0 + 200
    rig.api.other("o3", T0 + 300)  # the feed lists something newer: p2 was due in it
    assert LIST not in await rig.cycle()
    rig.now[0] += 600
    assert LIST in await rig.cycle()
    assert rig.collector.in_feed is False
    assert await rig.cycle() == [LIST]
    assert await rig.cycle() == [LIST]
    rig.api.followed = True  # followed again: the feed lists its next pipeline
    finished(rig.api, 4)
    await rig.cycle()
    assert rig.collector.in_feed is True
    assert await rig.cycle() == []


async def test_offers_piling_up_are_dropped_for_a_list_read(rig: Rig) -> None:
    finished(rig.api, 1)
    await rig.cycle()
    assert await rig.cycle() == []
    rig.api.page_size = 20
    for n in range(2, 203):  # 201 pipelines offered while the project's cycles fail
        finished(rig.api, n)
    async for pipeline in rig.client.iter_project_pipelines(SLUG):
        if pipeline.id != "p1":
            rig.collector.offer(pipeline)
    assert rig.collector.list_read_due(rig.now[0])
    await rig.collector.cycle()
    snapshot = rig.state.snapshot(rig.now[0])
    assert sum(snapshot.workflow_runs.values()) == 202
