"""`circleci-exporter webhooks sync`: create or update the CircleCI webhooks of the tracked
projects, so that they deliver to this exporter's endpoint.

Idempotent: our webhook is the one named WEBHOOK_NAME (or, failing that, one already pointing
at our URL); when its URL, events and TLS check are as wanted it is left alone. CircleCI masks
the signing secret it returns, so the secret only counts as changed when the visible end of the
mask differs from ours.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from exporter.circleci import CircleCIClient, CircleCIError, Transport, models
from exporter.collect.discovery import discover_projects
from exporter.collect.events import EVENT_TYPES
from exporter.components import build_client
from exporter.settings import Settings
from exporter.sharding import owner_of, shard_url

logger = logging.getLogger(__name__)

WEBHOOK_NAME = "circleci-exporter"
MAX_WEBHOOKS_PER_PROJECT = 5  # CircleCI's limit (docs/circleci-api.md §Webhook management)

Action = Literal["created", "updated", "unchanged", "skipped"]


@dataclass(frozen=True, slots=True)
class SyncResult:
    project: str
    action: Action
    detail: str = ""
    dry_run: bool = False

    @property
    def failed(self) -> bool:
        return self.action == "skipped"

    def line(self) -> str:
        verb: str = self.action
        if self.dry_run and self.action in ("created", "updated"):
            verb = f"would be {self.action}"
        return f"{self.project}: {verb}" + (f" ({self.detail})" if self.detail else "")


async def sync_webhooks(
    client: CircleCIClient,
    projects: Sequence[str],
    *,
    url_of: Callable[[str], str],
    secret: SecretStr,
    dry_run: bool = False,
) -> list[SyncResult]:
    """One result per project, in the given order, its webhook delivering to `url_of(slug)`;
    API errors skip that project only."""
    results = []
    for slug in projects:
        try:
            result = await _sync_project(
                client, slug, url=url_of(slug), secret=secret, dry_run=dry_run
            )
        except CircleCIError as err:
            result = SyncResult(slug, "skipped", str(err))
        results.append(result)
    return results


async def _sync_project(
    client: CircleCIClient, slug: str, *, url: str, secret: SecretStr, dry_run: bool
) -> SyncResult:
    project = await client.get_project(slug)
    hooks = [hook async for hook in client.iter_webhooks(project.id)]
    ours = _ours(hooks, url)
    if ours is None:
        if len(hooks) >= MAX_WEBHOOKS_PER_PROJECT:
            return SyncResult(
                slug,
                "skipped",
                f"it has {len(hooks)} webhooks, CircleCI's limit is "
                f"{MAX_WEBHOOKS_PER_PROJECT} per project: delete one in the project settings",
            )
        if not dry_run:
            ours = await client.create_webhook(
                project_id=project.id,
                name=WEBHOOK_NAME,
                url=url,
                events=EVENT_TYPES,
                signing_secret=secret,
            )
        return SyncResult(slug, "created", f"webhook {ours.id}" if ours else "", dry_run)
    changes = _changes(ours, url, secret)
    if not changes:
        return SyncResult(slug, "unchanged", f"webhook {ours.id}")
    if not dry_run:
        await client.update_webhook(
            ours.id,
            name=WEBHOOK_NAME,
            url=url,
            events=EVENT_TYPES,
            signing_secret=secret,
            verify_tls=True,
        )
    return SyncResult(slug, "updated", f"webhook {ours.id}: {', '.join(changes)}", dry_run)


def _ours(hooks: list[models.Webhook], url: str) -> models.Webhook | None:
    named = [hook for hook in hooks if hook.name == WEBHOOK_NAME]
    for candidates in (named, hooks):
        for hook in candidates:
            if hook.url == url:
                return hook
    return named[0] if named else None


def _changes(hook: models.Webhook, url: str, secret: SecretStr) -> list[str]:
    changes = []
    if hook.name != WEBHOOK_NAME:
        changes.append("name")
    if hook.url != url:
        changes.append("url")
    if set(hook.events) != set(EVENT_TYPES):
        changes.append("events")
    if hook.verify_tls is False:
        changes.append("verify-tls")
    if not _secret_may_match(hook.signing_secret, secret):
        changes.append("secret")
    return changes


def _secret_may_match(masked: str | None, secret: SecretStr) -> bool:
    """The API returns the secret masked, e.g. `****abcd`: compare what is visible."""
    visible = (masked or "").lstrip("*")
    return not visible or secret.get_secret_value().endswith(visible)


async def run_sync(
    settings: Settings,
    *,
    url: str | None = None,
    url_template: str | None = None,
    secret: SecretStr,
    dry_run: bool = False,
    transport: Transport | None = None,
) -> list[SyncResult]:
    """Sync the webhooks of every tracked project: `projects:`, then those `orgs:` discover.
    Each delivers to `url`, or with sharding to its owning shard's URL from `url_template`
    (`{shard}` replaced): one run covers every shard's projects."""
    url_of = _url_chooser(url, url_template, settings.sharding.total_shards)
    async with build_client(
        settings, CollectorRegistry(auto_describe=False), transport=transport
    ) as client:
        projects = [p.slug for p in settings.projects]
        results: list[SyncResult] = []
        for org in settings.orgs:
            try:
                found = await discover_projects(
                    client, org, insights_window=settings.collect.insights_window
                )
            except CircleCIError as err:
                results.append(SyncResult(org.slug, "skipped", f"discovery failed: {err}"))
                continue
            projects += sorted(found - set(projects))
        results += await sync_webhooks(
            client, projects, url_of=url_of, secret=secret, dry_run=dry_run
        )
        return results


def _url_chooser(
    url: str | None, url_template: str | None, total_shards: int
) -> Callable[[str], str]:
    if (url is None) == (url_template is None):
        raise ValueError("give exactly one of url and url_template")
    if url_template is not None:
        template = url_template
        return lambda slug: shard_url(template, owner_of(slug, total_shards))
    single = url
    assert single is not None
    return lambda slug: single
