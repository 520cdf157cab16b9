"""Outbound webhooks: the registry behind `/webhook`, the signature, and the payloads."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
import httpx

from exporter.simulator.catalog import random_uuid
from exporter.simulator.model import Job, Pipeline, Project, Workflow
from exporter.simulator.serialize import iso, standalone_trigger_parameters
from exporter.simulator.world import World

logger = logging.getLogger(__name__)

MAX_WEBHOOKS_PER_PROJECT = 5  # docs/circleci-api.md §Webhook management
EVENT_TYPES = ("workflow-completed", "job-completed")


def sign(body: bytes, secret: str) -> str:
    """The `circleci-signature` header value: `v1=` + hex HMAC-SHA256 of the raw body
    (docs/circleci-api.md §Webhook signatures)."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Webhook:
    id: str
    name: str
    url: str
    verify_tls: bool
    signing_secret: str
    scope_id: str
    events: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


class WebhookRegistry:
    """Webhooks created through the API, per project scope; ids come from a seeded stream."""

    def __init__(self, seed: int = 1) -> None:
        self._rng = random.Random(f"{seed}:webhooks")
        self._hooks: dict[str, Webhook] = {}
        self._lock = threading.Lock()

    def new_id(self) -> str:
        with self._lock:
            return random_uuid(self._rng)

    def add(self, hook: Webhook) -> None:
        with self._lock:
            if len(self.for_scope(hook.scope_id)) >= MAX_WEBHOOKS_PER_PROJECT:
                raise ValueError(f"A project can have at most {MAX_WEBHOOKS_PER_PROJECT} webhooks.")
            self._hooks[hook.id] = hook

    def get(self, webhook_id: str) -> Webhook | None:
        return self._hooks.get(webhook_id)

    def remove(self, webhook_id: str) -> bool:
        with self._lock:
            return self._hooks.pop(webhook_id, None) is not None

    def for_scope(self, scope_id: str) -> list[Webhook]:
        hooks = [hook for hook in self._hooks.values() if hook.scope_id == scope_id]
        return sorted(hooks, key=lambda hook: (hook.created_at, hook.id))


@dataclass(frozen=True)
class Delivery:
    url: str
    secret: str | None
    event_type: str
    event_id: str
    body: bytes

    def headers(self) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "user-agent": "CircleCI-Webhook/1.0",
            "circleci-event-type": self.event_type,
        }
        if self.secret:
            headers["circleci-signature"] = sign(self.body, self.secret)
        return headers


@dataclass(frozen=True)
class _Target:
    webhook_id: str
    name: str
    url: str
    secret: str | None
    events: tuple[str, ...]


class WebhookSender:
    """POSTs `workflow-completed` and `job-completed` events as runs complete.

    Targets: `SimConfig.webhook_url` for every project, plus webhooks created through the API for
    their project. Like CircleCI (docs/circleci-api.md §Webhook deliveries), some deliveries arrive
    twice and some out of order; both happen at the configured ratios, drawn from a seeded stream.
    """

    def __init__(
        self,
        world: World,
        registry: WebhookRegistry,
        *,
        poll_interval: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.world = world
        self.registry = registry
        self.poll_interval = poll_interval
        self.delivered = 0
        self._transport = transport
        config = world.config
        self._rng = random.Random(f"{config.seed}:webhook-delivery")
        self._configured = (
            _Target(
                str(uuid.uuid5(uuid.NAMESPACE_URL, f"{config.seed}:{config.webhook_url}")),
                "Simulator",
                config.webhook_url,
                config.webhook_secret,
                EVENT_TYPES,
            )
            if config.webhook_url
            else None
        )
        self._cursor = world.now()
        self._held: Delivery | None = None
        self._stopped = anyio.Event()

    @property
    def enabled(self) -> bool:
        """Worth running: a URL is configured (API-created webhooks are served whenever it runs)."""
        return self._configured is not None

    def due(self) -> list[Delivery]:
        """Deliveries for runs that completed since the last call, in (shuffled) sending order."""
        now = self.world.sync()
        completed = self.world.completed_between(self._cursor, now)
        self._cursor = now
        ordered: list[Delivery] = []
        duplicates: list[Delivery] = []
        for run in completed:
            for delivery in self._deliveries(run):
                if self._held is not None:
                    ordered += [delivery, self._held]
                    self._held = None
                elif self._rng.random() < self.world.config.webhook_reorder_ratio:
                    self._held = delivery
                else:
                    ordered.append(delivery)
                if self._rng.random() < self.world.config.webhook_duplicate_ratio:
                    duplicates.append(delivery)
        if self._held is not None:
            # Nothing came after it in this batch: it goes last, behind the duplicates.
            duplicates.append(self._held)
            self._held = None
        return ordered + duplicates

    async def deliver_due(self) -> int:
        """Send everything that is due now; returns how many POSTs succeeded."""
        sent = 0
        async with httpx.AsyncClient(transport=self._transport, timeout=10.0) as client:
            for delivery in self.due():
                try:
                    response = await client.post(
                        delivery.url, content=delivery.body, headers=delivery.headers()
                    )
                except httpx.HTTPError as error:
                    logger.warning("webhook delivery to %s failed: %s", delivery.url, error)
                    continue
                if response.is_success:
                    sent += 1
                else:
                    logger.warning(
                        "webhook delivery to %s answered %d", delivery.url, response.status_code
                    )
        self.delivered += sent
        return sent

    async def run(self) -> None:
        while not self._stopped.is_set():
            await self.deliver_due()
            with anyio.move_on_after(self.poll_interval):
                await self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()

    def _targets(self, project: Project) -> list[_Target]:
        targets = [self._configured] if self._configured else []
        targets += [
            _Target(hook.id, hook.name, hook.url, hook.signing_secret, hook.events)
            for hook in self.registry.for_scope(project.id)
        ]
        return targets

    def _deliveries(self, run: Workflow | Job) -> list[Delivery]:
        event_type = "workflow-completed" if isinstance(run, Workflow) else "job-completed"
        workflow = run if isinstance(run, Workflow) else run.workflow
        deliveries = []
        for target in self._targets(workflow.project):
            if event_type not in target.events:
                continue
            event_id = str(
                uuid.uuid5(uuid.NAMESPACE_OID, f"{event_type}:{run.id}:{target.webhook_id}")
            )
            payload = webhook_payload(run, event_id, target.webhook_id, target.name)
            body = json.dumps(payload, separators=(",", ":")).encode()
            deliveries.append(Delivery(target.url, target.secret, event_type, event_id, body))
        return deliveries


_WEBHOOK_TRIGGER = {"scheduled_pipeline": "schedule"}


def webhook_payload(
    run: Workflow | Job, event_id: str, webhook_id: str, webhook_name: str
) -> dict[str, Any]:
    """A payload shaped like CircleCI's samples (docs/circleci-api.md §Webhook deliveries)."""
    workflow = run if isinstance(run, Workflow) else run.workflow
    pipeline, project = workflow.pipeline, workflow.project
    workflow_body: dict[str, Any] = {
        "id": workflow.id,
        "name": workflow.name,
        "created_at": iso(workflow.created_at),
        "stopped_at": iso(workflow.stopped_at),
        "url": workflow.url,
    }
    payload: dict[str, Any] = {
        "id": event_id,
        "type": "workflow-completed" if run is workflow else "job-completed",
        "happened_at": iso(run.stopped_at),
        "webhook": {"id": webhook_id, "name": webhook_name},
        "project": {"id": project.id, "name": project.name, "slug": project.webhook_slug},
        "organization": {"id": project.organization.id, "name": project.organization.name},
        "workflow": workflow_body,
        "pipeline": _pipeline_payload(pipeline),
    }
    if isinstance(run, Workflow):
        workflow_body["status"] = run.final_status
    else:
        assert run.started_at is not None
        payload["job"] = {
            "id": run.id,
            "name": run.name,
            "started_at": iso(run.started_at),
            "stopped_at": iso(run.stopped_at),
            "status": run.final_status,
            "number": run.number,
        }
    return payload


def _pipeline_payload(pipeline: Pipeline) -> dict[str, Any]:
    project = pipeline.project
    body: dict[str, Any] = {
        "id": pipeline.id,
        "number": pipeline.number,
        "created_at": iso(pipeline.created_at),
        "trigger": {"type": _WEBHOOK_TRIGGER.get(pipeline.trigger_type, pipeline.trigger_type)},
    }
    if project.provider == "CircleCI":
        body["trigger"]["type"] = "gitlab"
        body["trigger_parameters"] = standalone_trigger_parameters(pipeline)
        return body
    author = {"name": pipeline.actor.login.title(), "email": f"{pipeline.actor.login}@example.com"}
    body["vcs"] = {
        "provider_name": project.provider.lower(),
        "origin_repository_url": project.vcs_url,
        "target_repository_url": project.vcs_url,
        "revision": pipeline.revision,
        "commit": {
            "subject": pipeline.subject,
            "body": "",
            "author": author,
            "authored_at": iso(pipeline.created_at.replace(microsecond=0)),
            "committer": author,
            "committed_at": iso(pipeline.created_at.replace(microsecond=0)),
        },
        "branch": pipeline.branch,
    }
    return body
