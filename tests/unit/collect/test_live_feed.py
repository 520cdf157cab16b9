"""LiveCollector and the org feeds: one feed per org of a tracked project, dispatch to tracked
projects only (whatever the capitals), the loop woken unless webhooks report the runs, and
no feed at all with `collect.org_feed: false`."""

from __future__ import annotations

import anyio
import httpx
import pytest
from fake_api import SLUG, FakeCircleCI

from exporter.components import build_components
from exporter.settings import Settings

pytestmark = pytest.mark.anyio

T0 = 1_700_000_000.0


def settings(**collect: object) -> Settings:
    return Settings(
        projects=[{"slug": SLUG}, {"slug": "gh/other/thing"}],
        api={"token": "t", "url": "https://circleci.example/api"},
        collect=collect,
    )


async def test_feeds_dispatch_to_tracked_projects_and_wake_their_loops() -> None:
    api = FakeCircleCI()
    api.pipeline("p1", T0)
    now = [T0 + 60]
    async with build_components(
        settings(), transport=httpx.MockTransport(api.handler), clock=lambda: now[0]
    ) as parts:
        live = parts.live
        assert sorted(feed.org for feed in live.feeds.values()) == ["gh/acme", "gh/other"]
        await live.read_feeds()  # first reads: they mark where each feed starts
        collector = live.projects[SLUG]
        # A new pipeline, spelt with other capitals, and one of an untracked project.
        api.pipeline("p2", T0 + 10)["project_slug"] = "gh/ACME/Api"
        api.other("o1", T0 + 11, project="gh/acme/untracked")
        live._wakes[SLUG] = wake = anyio.Event()
        await live.read_feeds()
        assert wake.is_set()
        assert collector.has_offers and collector.in_feed is True
        assert live.find("gh/acme/untracked") is None
        gauge = parts.registry.get_sample_value
        assert gauge("circleci_project_in_org_feed", {"project": SLUG}) == 1.0

        # While webhooks arrive, the feed keeps the list reads away but does not wake the loop.
        collector.note_webhook(now[0])
        api.pipeline("p3", T0 + 20)
        live._wakes[SLUG] = wake = anyio.Event()
        await live.read_feeds()
        assert not wake.is_set()
        assert collector.has_offers


async def test_without_org_feed_there_is_no_feed() -> None:
    api = FakeCircleCI()
    async with build_components(
        settings(org_feed=False), transport=httpx.MockTransport(api.handler)
    ) as parts:
        assert parts.live.feeds == {}
        assert all(c.feed is None for c in parts.live.projects.values())
        await parts.live.read_feeds()
    assert "/pipeline" not in api.requests
