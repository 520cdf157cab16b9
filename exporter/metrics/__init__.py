"""Snapshot → Prometheus exposition."""

from exporter.metrics.exposition import Rendered, render

__all__ = ["Rendered", "render"]
