"""What became of a verified webhook event handed to the live collector: the contract between
`LiveCollector.apply_event` (collect layer) and the webhook receiver (web layer), which counts
each value as the `outcome` label of circleci_exporter_webhook_events_total."""

from __future__ import annotations

from enum import StrEnum


class EventOutcome(StrEnum):
    APPLIED = "applied"
    # An untracked project or branch, a project not read yet, or an event polling must count.
    IGNORED = "ignored"
    # A project another shard owns (docs/architecture.md §Sharding): its webhook points here by
    # mistake, e.g. a `webhooks sync --url` made before sharding.
    OTHER_SHARD = "other_shard"
