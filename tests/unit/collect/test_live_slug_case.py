"""Slugs compare case-insensitively, as CircleCI's do (issue 12, item 9): an org feed that
spells a configured project with other capitals does not add a second collector."""

from __future__ import annotations

import pytest

from exporter.components import build_components
from exporter.settings import OrgSettings, Settings


@pytest.mark.anyio
async def test_discovery_does_not_track_a_configured_project_twice() -> None:
    settings = Settings(projects=[{"slug": "gh/acme/api"}], orgs=[{"slug": "gh/ACME"}])
    async with build_components(settings) as parts:
        assert parts.live.add_project("gh/ACME/API", OrgSettings(slug="gh/ACME")) is None
        assert list(parts.live.projects) == ["gh/acme/api"]
        assert parts.live.find("GH/Acme/Api") is parts.live.projects["gh/acme/api"]
