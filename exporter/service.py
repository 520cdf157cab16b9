"""Runs the exporter's parts (built by `exporter.components`) and serves them over HTTP."""

from __future__ import annotations

import logging
import socket

import anyio
import uvicorn
from starlette.types import ASGIApp

from exporter.circleci import Transport
from exporter.components import build_components
from exporter.settings import Settings
from exporter.web.app import create_app
from exporter.web.security import WebSecurity
from exporter.web.webhooks import webhook_app

logger = logging.getLogger(__name__)


async def run_exporter(
    settings: Settings,
    sock: socket.socket,
    *,
    webhook_sock: socket.socket | None = None,
    transport: Transport | None = None,
    demo: bool = False,
) -> None:
    """Serve on `sock` (see `exporter.web.listen`) until cancelled or until the web server is
    asked to stop (SIGINT, SIGTERM). `webhook_sock`: serve the webhook endpoint there only."""
    async with build_components(settings, transport=transport) as parts:
        receiver = parts.webhooks
        security = WebSecurity(settings.web.config_file, parts.registry)
        app = create_app(
            publisher=parts.publisher,
            registry=parts.registry,
            ready=lambda: parts.live.ready,
            telemetry_path=settings.web.telemetry_path,
            webhooks=receiver if webhook_sock is None else None,
            logs=parts.step_logs,
            log_lines=settings.web.log_lines,
            demo=demo,
        )
        server = _server(security.wrap(app, "metrics"), security)
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
            tg.start_soon(security.run)
            if receiver is not None and webhook_sock is not None:
                webhook_server = _server(security.wrap(webhook_app(receiver), "webhooks"), security)
                tg.start_soon(webhook_server.serve, [webhook_sock])
            tg.start_soon(parts.run)


def _server(app: ASGIApp, security: WebSecurity) -> uvicorn.Server:
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    config.load()
    # uvicorn builds its TLS context from file names once; the web config's context changes
    # its certificate and policy in place when the file changes (exporter.web.security).
    config.ssl = security.ssl_context()
    return uvicorn.Server(config)
