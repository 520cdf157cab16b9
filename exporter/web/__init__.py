"""The exporter's web server: /metrics, health, the landing page."""
