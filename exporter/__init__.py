"""Ocean CI: a Prometheus exporter for CircleCI."""

__version__ = "0.1.0"
