"""Which projects of an `orgs:` entry are tracked: a pure read of the API, no state."""

from __future__ import annotations

from exporter.circleci import CircleCIClient, models, slugs
from exporter.settings import OrgSettings

# The org feed lists pipelines of the org's most recently built projects, newest first:
# five pages (100 pipelines) find every project that built lately without paging for long.
_DISCOVERY_PAGES = 5


async def discover_projects(
    client: CircleCIClient, org: OrgSettings, *, insights_window: models.ReportingWindow
) -> set[str]:
    """Projects of the org that built lately, or that Insights knows, matching its globs."""
    found: set[str] = set()
    seen = 0
    async for pipeline in client.iter_org_pipelines(org.slug):
        found.add(slugs.normalize_project_slug(pipeline.project_slug))
        seen += 1
        if seen >= 20 * _DISCOVERY_PAGES:
            break
    # Insights names projects, not slugs; names map to slugs only for OAuth orgs
    # (standalone project slugs hold opaque ids).
    if not org.slug.startswith("circleci/"):
        summary = await client.get_org_summary(org.slug, reporting_window=insights_window)
        found.update(f"{org.slug}/{name}" for name in summary.all_projects)
    return {slug for slug in found if org.admits(slug)}
