"""The ASGI app: CircleCI's routes plus the `/__sim` control endpoints."""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable

import anyio
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from exporter.simulator import (
    routes_core,
    routes_insights,
    routes_output,
    routes_v1,
    routes_webhooks,
)
from exporter.simulator.context import ApiError, ApiRoute, SimContext
from exporter.simulator.faults import FaultRule, Faults, malform
from exporter.simulator.pagination import InvalidPageToken
from exporter.simulator.webhooks import WebhookRegistry
from exporter.simulator.world import World

logger = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]

API_ROUTES: tuple[ApiRoute, ...] = (
    routes_core.ROUTES
    + routes_v1.ROUTES
    + routes_insights.ROUTES
    + routes_webhooks.ROUTES
    + routes_output.ROUTES
)


def create_app(
    world: World, faults: Faults | None = None, webhooks: WebhookRegistry | None = None
) -> Starlette:
    """Serve `world` under `/api/v2` and `/api/v1.1`, with `/__sim/stats` and `/__sim/faults`."""
    ctx = SimContext(
        world=world,
        faults=faults if faults is not None else Faults(world.config.seed),
        webhooks=webhooks if webhooks is not None else WebhookRegistry(world.config.seed),
    )
    routes = [
        Route(r.path, _endpoint(r, ctx), methods=[r.method], name=r.operation_id)
        for r in API_ROUTES
    ]
    routes += [
        Route("/__sim/stats", _stats(ctx), methods=["GET"]),
        Route("/__sim/faults", _faults_control(ctx), methods=["GET", "POST", "DELETE"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    app.state.sim = ctx
    return app


def _endpoint(route: ApiRoute, ctx: SimContext) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        ctx.requests[route.operation_id] += 1
        ctx.count_project_request(request)
        response = await _respond(route, ctx, request)
        ctx.responses[str(response.status_code)] += 1
        return response

    return endpoint


async def _respond(route: ApiRoute, ctx: SimContext, request: Request) -> Response:
    if not route.presigned and not _authorized(request, ctx.world.config.token):
        return ApiError(401, "Invalid token provided.").response()
    decision = ctx.faults.decide(route.operation_id, request.url.path)
    if decision.delay:
        await anyio.sleep(decision.delay)
    if decision.response is not None:
        return decision.response
    try:
        body = await route.handler(request, ctx)
    except ApiError as error:
        return error.response()
    except InvalidPageToken:
        return ApiError(404, "Not Found").response()
    if not isinstance(body, Response):
        body = JSONResponse(ctx.faults.apply_quirks(body, decision))
    response: Response = body
    if decision.malformed:
        return Response(
            malform(bytes(response.body)), response.status_code, media_type="application/json"
        )
    return response


def _authorized(request: Request, token: str) -> bool:
    """Accept the forms CircleCI documents (docs/circleci-api.md §Auth and errors): `Circle-Token`,
    `Authorization: Bearer`, Basic with the token as user, and the deprecated `?circle-token=`."""
    offered = request.headers.get("circle-token") or request.query_params.get("circle-token")
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        offered = value.strip()
    elif scheme.lower() == "basic":
        try:
            offered = base64.b64decode(value.strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return False
    return offered is not None and hmac.compare_digest(offered.encode(), token.encode())


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "Not Found" if exc.status_code == 404 else str(exc.detail)
    return JSONResponse({"message": message}, status_code=exc.status_code)


def _from_loopback(request: Request) -> bool:
    """The `/__sim` control endpoints need no token, so they answer this machine only."""
    try:
        return request.client is not None and ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


def _loopback_only() -> Response:
    return JSONResponse(
        {"message": "the simulator's control endpoints answer loopback clients only"}, 403
    )


def _stats(ctx: SimContext) -> Endpoint:
    async def stats(request: Request) -> Response:
        if not _from_loopback(request):
            return _loopback_only()
        return JSONResponse(ctx.stats())

    return stats


def _faults_control(ctx: SimContext) -> Endpoint:
    async def control(request: Request) -> Response:
        if not _from_loopback(request):
            return _loopback_only()
        if request.method == "POST":
            try:
                rule = FaultRule.model_validate_json(await request.body())
            except ValidationError as error:
                return JSONResponse({"message": _one_line(error)}, status_code=400)
            ctx.faults.add(rule)
            logger.info("fault rule added: %s", rule.model_dump(exclude_defaults=True))
        elif request.method == "DELETE":
            ctx.faults.clear()
        return JSONResponse({"rules": [r.model_dump() for r in ctx.faults.rules]})

    return control


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"invalid fault rule: {where}: {first['msg']}"
