"""A simulated CircleCI API: a deterministic fake organisation that changes over time.

Used by `circleci-exporter --demo`, `circleci-exporter simulate`, the end-to-end tests and the
benchmarks. See `World` for the ground truth a test can compare the exporter against.
"""

from exporter.simulator.app import create_app
from exporter.simulator.clock import SimClock
from exporter.simulator.config import SimConfig
from exporter.simulator.faults import FaultRule, Faults
from exporter.simulator.server import RunningSimulator, serve
from exporter.simulator.webhooks import WebhookSender, sign
from exporter.simulator.world import World

__all__ = [
    "FaultRule",
    "Faults",
    "RunningSimulator",
    "SimClock",
    "SimConfig",
    "WebhookSender",
    "World",
    "create_app",
    "serve",
    "sign",
]
