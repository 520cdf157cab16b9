"""Dashboards as code: builds grafana/dashboards/*.json with grafana-foundation-sdk.

Run ``python -m grafana.generate`` from the repository root to rewrite the JSON files, or
``python -m grafana.generate --check`` to fail when the committed files are out of date.
"""
