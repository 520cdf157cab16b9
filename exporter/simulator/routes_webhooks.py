"""Webhook management (docs/circleci-api.md §Webhook management); webhooks created here receive
the simulated events."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from exporter.simulator.context import ApiError, ApiRoute, SimContext
from exporter.simulator.pagination import offset_page, page_body
from exporter.simulator.serialize import iso
from exporter.simulator.webhooks import EVENT_TYPES, Webhook

V2 = "/api/v2/webhook"


def _serialize(hook: Webhook) -> dict[str, Any]:
    return {
        "id": hook.id,
        "name": hook.name,
        "url": hook.url,
        "verify-tls": hook.verify_tls,
        # The API never returns a secret, only a masked hint of it.
        "signing-secret": "****" + hook.signing_secret[-4:],
        "created-at": iso(hook.created_at),
        "updated-at": iso(hook.updated_at),
        "scope": {"id": hook.scope_id, "type": "project"},
        "events": list(hook.events),
    }


def _field(body: dict[str, Any], name: str) -> Any:
    """Casing is contested (docs/circleci-api.md §Webhook management): accept `verify-tls` and
    `verify_tls` alike."""
    for key in (name, name.replace("-", "_")):
        if key in body:
            return body[key]
    return None


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise ApiError(400, "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return body


def _checked(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    values = {
        name: _field(body, name)
        for name in ("name", "url", "events", "verify-tls", "signing-secret")
    }
    for name, value in values.items():
        if value is None and not partial:
            raise ApiError(400, f"{name} is required")
    url, events = values["url"], values["events"]
    if url is not None and (
        not isinstance(url, str) or not url.startswith(("https://", "http://"))
    ):
        # CircleCI only delivers to https; plain http is allowed here for loopback receivers.
        raise ApiError(400, "url must be an http(s) URL")
    if events is not None and (
        not isinstance(events, list) or not events or not set(events) <= set(EVENT_TYPES)
    ):
        raise ApiError(400, f"events must be a non-empty subset of {list(EVENT_TYPES)}")
    return values


async def list_webhooks(request: Request, ctx: SimContext) -> object:
    scope_id = request.query_params.get("scope-id")
    scope_type = request.query_params.get("scope-type")
    if not scope_id or scope_type != "project":
        raise ApiError(400, "scope-id and scope-type=project are required")
    hooks = [_serialize(hook) for hook in ctx.webhooks.for_scope(scope_id)]
    page, token = offset_page(hooks, request.query_params.get("page-token"), f"webhooks:{scope_id}")
    return page_body(list(page), token)


async def create_webhook(request: Request, ctx: SimContext) -> object:
    body = await _json_body(request)
    values = _checked(body, partial=False)
    scope = body.get("scope")
    if not isinstance(scope, dict) or scope.get("type") != "project":
        raise ApiError(400, "scope with type project is required")
    if not any(p.id == scope.get("id") for p in ctx.world.projects):
        raise ApiError(404, "Project not found.")
    now = ctx.world.now()
    hook = Webhook(
        id=ctx.webhooks.new_id(),
        name=str(values["name"]),
        url=str(values["url"]),
        verify_tls=bool(values["verify-tls"]),
        signing_secret=str(values["signing-secret"]),
        scope_id=str(scope["id"]),
        events=tuple(values["events"]),
        created_at=now,
        updated_at=now,
    )
    try:
        ctx.webhooks.add(hook)
    except ValueError as error:
        raise ApiError(400, str(error)) from None
    return JSONResponse(_serialize(hook), status_code=201)


def _existing(request: Request, ctx: SimContext) -> Webhook:
    hook = ctx.webhooks.get(request.path_params["id"])
    if hook is None:
        raise ApiError(404, "Webhook not found")
    return hook


async def get_webhook(request: Request, ctx: SimContext) -> object:
    return _serialize(_existing(request, ctx))


async def update_webhook(request: Request, ctx: SimContext) -> object:
    hook = _existing(request, ctx)
    values = _checked(await _json_body(request), partial=True)
    if values["name"] is not None:
        hook.name = str(values["name"])
    if values["url"] is not None:
        hook.url = str(values["url"])
    if values["events"] is not None:
        hook.events = tuple(values["events"])
    if values["verify-tls"] is not None:
        hook.verify_tls = bool(values["verify-tls"])
    if values["signing-secret"] is not None:
        hook.signing_secret = str(values["signing-secret"])
    hook.updated_at = ctx.world.now()
    return _serialize(hook)


async def delete_webhook(request: Request, ctx: SimContext) -> object:
    ctx.webhooks.remove(_existing(request, ctx).id)
    return {"message": "Webhook deleted."}


ROUTES = (
    ApiRoute(V2, "GET", "getWebhooks", list_webhooks),
    ApiRoute(V2, "POST", "createWebhook", create_webhook),
    ApiRoute(V2 + "/{id}", "GET", "getWebhookById", get_webhook),
    ApiRoute(V2 + "/{id}", "PUT", "updateWebhook", update_webhook),
    ApiRoute(V2 + "/{id}", "DELETE", "deleteWebhook", delete_webhook),
)
