"""The ASGI application."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from exporter import __version__
from exporter.metrics.exposition import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    render_process,
)
from exporter.web.publisher import Publisher
from exporter.web.webhooks import WebhookReceiver


def create_app(
    *,
    publisher: Publisher,
    registry: CollectorRegistry,
    ready: Callable[[], bool],
    telemetry_path: str = "/metrics",
    webhooks: WebhookReceiver | None = None,
) -> Starlette:
    """`webhooks`: serve its endpoint here too (not when it has a listener of its own)."""

    async def metrics(request: Request) -> Response:
        rendered = publisher.rendered
        openmetrics = "application/openmetrics-text" in request.headers.get("accept", "")
        cached = rendered.openmetrics if openmetrics else rendered.text
        live = render_process(registry, fmt_openmetrics=openmetrics)
        media_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
        return StreamingResponse(_stream(cached, live), media_type=media_type)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(_: Request) -> Response:
        if ready():
            return PlainTextResponse("ready\n")
        return PlainTextResponse("first collection not finished\n", status_code=503)

    async def landing(_: Request) -> Response:
        return HTMLResponse(_landing_page(publisher, telemetry_path))

    routes = [
        Route(telemetry_path, metrics),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/", landing),
    ]
    if webhooks is not None:
        routes.append(webhooks.route())
    return Starlette(routes=routes)


# The cached exposition goes out in slices of itself, never copied whole: with 100k series it
# is ~15 MB, and a copy per scrape in flight made 100 concurrent scrapes cost over 1 GB.
_CHUNK = 256 * 1024


async def _stream(cached: bytes, live: bytes) -> AsyncIterator[memoryview | bytes]:
    view = memoryview(cached)
    for start in range(0, len(view), _CHUNK):
        yield view[start : start + _CHUNK]
    yield live


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _landing_page(publisher: Publisher, telemetry_path: str) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(project)}</td><td>{html.escape(collector)}</td>"
        f"<td>{'up' if row.up else 'down'}</td><td>{_when(row.last_success)}</td>"
        f"<td>{html.escape(row.last_error or '')}</td></tr>"
        for (project, collector), row in sorted(publisher.snapshot.collections.items())
    )
    path = html.escape(telemetry_path)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>CircleCI exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em 1em;text-align:left}}</style>
</head><body>
<h1>CircleCI exporter</h1>
<p>Ocean CI exporter {html.escape(__version__)} &middot; <a href="{path}">Metrics</a>
&middot; <a href="/healthz">Health</a> &middot; <a href="/readyz">Readiness</a></p>
<table><tr><th>Project</th><th>Collector</th><th>State</th><th>Last success</th>
<th>Last error</th></tr>{rows}</table>
</body></html>
"""
