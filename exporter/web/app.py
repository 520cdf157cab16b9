"""The ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from exporter.metrics.exposition import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    render_process,
)
from exporter.web.compression import accepts_gzip
from exporter.web.oncall import LogReader, OnCall
from exporter.web.publisher import Publisher
from exporter.web.webhooks import WebhookReceiver


def create_app(
    *,
    publisher: Publisher,
    registry: CollectorRegistry,
    ready: Callable[[], bool],
    telemetry_path: str = "/metrics",
    webhooks: WebhookReceiver | None = None,
    logs: LogReader | None = None,
    log_lines: int = 50,
    demo: bool = False,
) -> Starlette:
    """`webhooks`: serve its endpoint here too (not when it has a listener of its own).
    `logs`: serve failed steps' log tails (None: `web.logs: false`)."""

    async def metrics(request: Request) -> Response:
        rendered = publisher.rendered
        openmetrics = "application/openmetrics-text" in request.headers.get("accept", "")
        cached = rendered.openmetrics if openmetrics else rendered.text
        live = render_process(registry, fmt_openmetrics=openmetrics)
        media_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
        headers = {"Vary": "Accept-Encoding"}
        if accepts_gzip(request.headers.get("accept-encoding", "")):
            gzip = rendered.openmetrics_gzip if openmetrics else rendered.text_gzip
            headers["Content-Encoding"] = "gzip"
            return StreamingResponse(
                _stream(gzip.head, gzip.finish(live)), media_type=media_type, headers=headers
            )
        return StreamingResponse(_stream(cached, live), media_type=media_type, headers=headers)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(_: Request) -> Response:
        if ready():
            return PlainTextResponse("ready\n")
        return PlainTextResponse("first collection not finished\n", status_code=503)

    oncall = OnCall(
        snapshot=lambda: publisher.snapshot,
        logs=logs,
        log_lines=log_lines,
        demo=demo,
        telemetry_path=telemetry_path,
    )
    routes: list[BaseRoute] = [
        Route(telemetry_path, metrics),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        *oncall.routes(),
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
