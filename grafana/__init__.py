"""Grafana assets of Ocean CI: dashboard generator, generated dashboards and provisioning."""
