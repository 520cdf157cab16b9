"""`circleci-exporter backfill`: up to 90 days of Insights runs turned into the live metric
families, as an OpenMetrics file for `promtool tsdb create-blocks-from openmetrics`."""
