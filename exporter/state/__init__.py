"""The picture of every tracked branch: run updates in, immutable snapshots out."""

from exporter.state.snapshot import Snapshot
from exporter.state.store import Buckets, Expired, State

__all__ = ["Buckets", "Expired", "Snapshot", "State"]
