"""Webhook management endpoints (api-notes §2.12)."""

from __future__ import annotations

from exporter.simulator.context import ApiRoute

ROUTES: tuple[ApiRoute, ...] = ()
