"""The composition root: the one place that builds the exporter's parts and wires them.

client → collectors → state → publisher (snapshot → exposition) → web. `service.py`, the
`webhooks sync` command, the test harnesses and the benchmarks all build their parts here, so
a part is wired the same way wherever it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import NamedTuple

import anyio
from prometheus_client import CollectorRegistry

from exporter.circleci import (
    ApiTelemetry,
    Backoff,
    CircleCIClient,
    RateLimiter,
    Transport,
    slugs,
)
from exporter.collect.events import EVENT_TYPES
from exporter.collect.expiry import StaleSeriesExpiry
from exporter.collect.insights import InsightsCollector
from exporter.collect.live import LiveCollector
from exporter.collect.schedules import ScheduleBook, ScheduleCollector
from exporter.collect.step_logs import StepLogs, StepLogTelemetry
from exporter.collect.telemetry import CollectTelemetry, register_shard_metrics
from exporter.settings import Settings
from exporter.sharding import Shard
from exporter.state import Buckets, State
from exporter.state.insights import InsightsStore
from exporter.state.schedules import ScheduleStore
from exporter.web.publisher import Publisher
from exporter.web.webhooks import WebhookReceiver, WebhookTelemetry

# With webhooks, a broken default branch should show within a second of the event: the
# snapshot is re-rendered at most this often (polling alone re-renders once per second at most).
WEBHOOK_PUBLISH_GAP = 0.25


@dataclass
class Components:
    """The parts of one exporter. An async context manager: leaving it closes the client."""

    settings: Settings
    registry: CollectorRegistry
    client: CircleCIClient
    state: State
    live: LiveCollector
    insights_store: InsightsStore | None
    insights: InsightsCollector | None
    schedules: ScheduleCollector
    publisher: Publisher
    expiry: StaleSeriesExpiry
    webhooks: WebhookReceiver | None
    step_logs: StepLogs | None  # read-only log tails for the web layer; None: `web.logs: false`

    async def __aenter__(self) -> Components:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.client.aclose()

    async def run(self) -> None:
        """The collectors, stale-series expiry and the publisher, until cancelled."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.live.run)
            tg.start_soon(self.schedules.run)
            if self.insights is not None:
                tg.start_soon(self.insights.run)
            tg.start_soon(self.expiry.run)
            tg.start_soon(self.publisher.run)


class RequestRate(NamedTuple):
    per_second: float
    burst: int


def request_rate(settings: Settings) -> RequestRate:
    """This process's share of the API rate limit: all of `api.requests_per_second` and
    `api.burst`, or with `collect.rate_limit_split` their part for one of the shards that share
    a token (and so its rate limit)."""
    api = settings.api
    shares = settings.sharding.total_shards if settings.collect.rate_limit_split else 1
    return RequestRate(api.requests_per_second / shares, max(1, api.burst // shares))


def build_client(
    settings: Settings, registry: CollectorRegistry, *, transport: Transport | None = None
) -> CircleCIClient:
    """The API client with the process-wide rate limiter and its request metrics."""
    api = settings.api
    rate = request_rate(settings)
    return CircleCIClient(
        api.url,
        api.resolved_token(),
        limiter=RateLimiter(rate.per_second, rate.burst, api.max_concurrency),
        telemetry=ApiTelemetry(registry),
        timeout=api.timeout,
        max_retries=api.max_retries,
        max_response_bytes=api.max_response_bytes,
        max_pages=api.max_pages,
        breaker_failures=api.circuit_breaker_failures,
        breaker_max_pause=api.circuit_breaker_max_pause,
        backoff=Backoff(max_server_wait=api.max_rate_limit_wait),
        transport=transport,
    )


def buckets(settings: Settings) -> Buckets:
    m = settings.metrics
    return Buckets(
        workflow_duration=tuple(m.workflow_duration_buckets),
        job_duration=tuple(m.job_duration_buckets),
        queue=tuple(m.queue_buckets),
    )


def insights_orgs(settings: Settings, shard: Shard) -> set[str]:
    """The orgs whose Insights summary this replica reads: those of `orgs:` and of the
    projects under `projects:` (every tracked project belongs to one of them), each read by the
    one shard that owns the org's slug, so that no org-level series comes from two shards."""
    orgs = {org.slug for org in settings.orgs}
    orgs |= {slugs.org_slug_of(project.slug) for project in settings.projects}
    return {org for org in orgs if shard.owns(org)}


def build_components(
    settings: Settings,
    *,
    transport: Transport | None = None,
    clock: Callable[[], float] = time.time,
    watch_start: float | None = None,
) -> Components:
    """Every part, wired. The watch (see `State`) starts at `watch_start`, by default now by
    `clock`. The projects of `projects:` are tracked at once; those of `orgs:` when `live.run`
    discovers them; with sharding, only those this shard owns. `transport` carries the API
    requests (tests and benchmarks)."""
    shard = settings.sharding.resolved()
    registry = CollectorRegistry(auto_describe=False)
    collect_telemetry = CollectTelemetry(registry)
    state = State(
        watch_start=clock() if watch_start is None else watch_start,
        buckets=buckets(settings),
        series_ttl=settings.collect.series_ttl,
        max_series_per_project=settings.collect.max_series_per_project,
        on_series_limit=collect_telemetry.series_limit_hit,
    )
    intervals = {
        "live": settings.collect.interval,
        "schedules": settings.collect.schedules_interval,
    }
    schedule_store = ScheduleStore()
    schedule_book = ScheduleBook(schedule_store, grace=settings.collect.schedule_grace, clock=clock)
    insights_store = InsightsStore() if settings.insights.enabled else None
    if insights_store is not None:
        intervals["insights"] = settings.collect.insights_interval
    secrets = settings.webhooks.resolved_secrets()
    publish_gap = WEBHOOK_PUBLISH_GAP if secrets else 1.0
    publisher = Publisher(
        state,
        intervals,
        insights=insights_store,
        schedules=schedule_store,
        min_gap=min(publish_gap, settings.collect.interval),
        success_gap=settings.collect.interval,
        clock=clock,
        registry=registry,
    )
    client = build_client(settings, registry, transport=transport)
    live = LiveCollector(
        settings,
        client=client,
        state=state,
        on_cycle=publisher.request,
        telemetry=collect_telemetry,
        schedules=schedule_book,
        clock=clock,
        shard=shard,
    )
    for project in settings.projects:
        live.add_project(project.slug, project)
    register_shard_metrics(registry, shard, lambda: len(live.projects))
    insights = None
    if insights_store is not None:
        insights = InsightsCollector(
            settings,
            client=client,
            state=state,
            store=insights_store,
            tracked=lambda: {slug: p.policy for slug, p in live.projects.items()},
            orgs=lambda: insights_orgs(settings, live.shard),
            on_sweep=publisher.request,
            telemetry=collect_telemetry,
            clock=clock,
        )
    schedules = ScheduleCollector(
        client=client,
        state=state,
        book=schedule_book,
        tracked=lambda: list(live.projects),
        interval=settings.collect.schedules_interval,
        on_read=publisher.request,
        telemetry=collect_telemetry,
        clock=clock,
    )
    expiry = StaleSeriesExpiry(
        state, telemetry=collect_telemetry, on_expired=publisher.request, clock=clock
    )
    # Registered even without webhooks, so the family is always served (zeros).
    webhook_telemetry = WebhookTelemetry(registry, EVENT_TYPES)
    webhooks = (
        WebhookReceiver(
            secrets,
            apply=live.apply_event,
            event_types=EVENT_TYPES,
            on_applied=publisher.request,
            telemetry=webhook_telemetry,
            body_timeout=settings.webhooks.body_timeout,
            max_connections=settings.webhooks.max_connections,
            dedupe_max_bytes=settings.webhooks.dedupe_max_bytes,
        )
        if secrets
        else None
    )
    # Registered even with `web.logs: false`, so the family is always served (zeros).
    step_log_telemetry = StepLogTelemetry(registry)
    return Components(
        settings=settings,
        registry=registry,
        client=client,
        state=state,
        live=live,
        insights_store=insights_store,
        insights=insights,
        schedules=schedules,
        publisher=publisher,
        expiry=expiry,
        webhooks=webhooks,
        step_logs=(
            StepLogs(
                client,
                telemetry=step_log_telemetry,
                max_entries=settings.web.log_cache_entries,
                max_bytes=settings.web.log_cache_bytes,
            )
            if settings.web.logs
            else None
        ),
    )
