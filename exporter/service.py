"""Wires the layers together and runs them: client → collectors → state → publisher → web."""

from __future__ import annotations

import logging
import socket
import time

import anyio
import httpx
import uvicorn
from prometheus_client import CollectorRegistry

from exporter.circleci import ApiTelemetry, CircleCIClient, RateLimiter
from exporter.collect.insights import InsightsCollector
from exporter.collect.live import LiveCollector
from exporter.collect.telemetry import CollectTelemetry
from exporter.settings import Settings
from exporter.state import Buckets, State
from exporter.state.insights import InsightsStore
from exporter.web.app import create_app
from exporter.web.publisher import Publisher
from exporter.web.webhooks import WebhookReceiver, WebhookTelemetry, webhook_app

logger = logging.getLogger(__name__)

# With webhooks, a broken default branch should show within a second of the event: the
# snapshot is re-rendered at most this often (polling alone re-renders once per second at most).
_WEBHOOK_PUBLISH_GAP = 0.25


def _buckets(settings: Settings) -> Buckets:
    m = settings.metrics
    return Buckets(
        workflow_duration=tuple(m.workflow_duration_buckets),
        job_duration=tuple(m.job_duration_buckets),
        queue=tuple(m.queue_buckets),
    )


async def run_exporter(
    settings: Settings,
    sock: socket.socket,
    *,
    webhook_sock: socket.socket | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> None:
    """Serve on `sock` (see `exporter.web.listen`) until cancelled or until the web server is
    asked to stop (SIGINT, SIGTERM). `webhook_sock`: serve the webhook endpoint there only."""
    secrets = settings.webhooks.resolved_secrets()
    registry = CollectorRegistry(auto_describe=False)
    limiter = RateLimiter(
        settings.api.requests_per_second, settings.api.burst, settings.api.max_concurrency
    )
    state = State(
        watch_start=time.time(), buckets=_buckets(settings), series_ttl=settings.collect.series_ttl
    )
    intervals = {"live": settings.collect.interval}
    insights_store = InsightsStore() if settings.insights.enabled else None
    if insights_store is not None:
        intervals["insights"] = settings.collect.insights_interval
    publish_gap = _WEBHOOK_PUBLISH_GAP if secrets else 1.0
    publisher = Publisher(
        state,
        intervals,
        insights=insights_store,
        min_gap=min(publish_gap, settings.collect.interval),
    )
    async with CircleCIClient(
        settings.api.url,
        settings.api.resolved_token(),
        limiter=limiter,
        telemetry=ApiTelemetry(registry),
        timeout=settings.api.timeout,
        max_retries=settings.api.max_retries,
        transport=transport,
    ) as client:
        collect_telemetry = CollectTelemetry(registry)
        live = LiveCollector(
            settings,
            client=client,
            state=state,
            on_cycle=publisher.request,
            telemetry=collect_telemetry,
        )
        # Registered even without webhooks, so the family is always served (zeros).
        webhook_telemetry = WebhookTelemetry(registry)
        receiver = (
            WebhookReceiver(
                secrets,
                projects=live.projects,
                state=state,
                on_applied=publisher.request,
                telemetry=webhook_telemetry,
            )
            if secrets
            else None
        )
        app = create_app(
            publisher=publisher,
            registry=registry,
            ready=lambda: live.ready,
            telemetry_path=settings.web.telemetry_path,
            webhooks=receiver if webhook_sock is None else None,
        )
        server = uvicorn.Server(
            uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        )
        logger.info(
            "starting",
            extra={
                "listen_address": settings.web.listen_address,
                "projects": len(settings.projects),
                "orgs": len(settings.orgs),
                "api_url": settings.api.url,
                "webhooks": "off" if receiver is None else "on",
                "webhook_listen_address": settings.webhooks.listen_address,
            },
        )
        async with anyio.create_task_group() as tg:

            async def serve_then_stop() -> None:
                await server.serve([sock])
                tg.cancel_scope.cancel()

            tg.start_soon(serve_then_stop)
            if receiver is not None and webhook_sock is not None:
                webhook_server = uvicorn.Server(
                    uvicorn.Config(
                        webhook_app(receiver), log_config=None, access_log=False, lifespan="off"
                    )
                )
                tg.start_soon(webhook_server.serve, [webhook_sock])
            tg.start_soon(live.run)
            if insights_store is not None:
                insights = InsightsCollector(
                    settings,
                    client=client,
                    state=state,
                    store=insights_store,
                    tracked=lambda: {s: p.policy for s, p in live.projects.items()},
                    on_sweep=publisher.request,
                    telemetry=collect_telemetry,
                )
                tg.start_soon(insights.run)
            tg.start_soon(publisher.run)
