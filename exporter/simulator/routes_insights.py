"""Insights endpoints (api-notes §2.9)."""

from __future__ import annotations

from exporter.simulator.context import ApiRoute

ROUTES: tuple[ApiRoute, ...] = ()
