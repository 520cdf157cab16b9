"""The CircleCI webhook receiver: `POST /webhooks/circleci`.

Each request is verified, parsed and applied to the state on the event loop, with no API call,
so it answers within milliseconds (CircleCI retries after 10 s without a 2xx, api-notes §4).
Statuses: 401 missing or bad signature, 413 body over 1 MiB, 400 not an event, 202 an event
that is not applied (unknown type, untracked project or branch), 200 applied or duplicate.
Nothing is applied unless the request is verified and well-formed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from exporter.collect.events import (
    EVENT_TYPES,
    MalformedEvent,
    ParsedEvent,
    UnusableEvent,
    parse_event,
)
from exporter.collect.project import ProjectCollector
from exporter.metrics.catalog import BY_NAME
from exporter.state import State
from exporter.state.updates import JobUpdate

logger = logging.getLogger(__name__)

PATH = "/webhooks/circleci"
# CircleCI's payloads are a few KiB; anything this large is not one of them.
MAX_BODY = 1024 * 1024
# Event ids remembered for deduplication. Redeliveries come minutes to hours apart (the retry
# schedule is undocumented, api-notes §4); at 1,000 events/s this still covers over a minute,
# and behind it the state counts each run once by its id anyway.
DEDUPE_SIZE = 100_000

OUTCOMES = ("applied", "duplicate", "invalid_signature", "malformed", "ignored", "too_large")
# The `event` label of requests whose type is unknown or unverified: an attacker must not be
# able to mint label values.
OTHER_EVENT = "other"


class WebhookTelemetry:
    def __init__(self, registry: CollectorRegistry) -> None:
        spec = BY_NAME["circleci_exporter_webhook_events_total"]
        self._events = Counter(spec.name, spec.help, spec.labels, registry=registry)
        for event in EVENT_TYPES:
            for outcome in OUTCOMES:
                self._events.labels(event, outcome)

    def count(self, event: str, outcome: str) -> None:
        self._events.labels(event, outcome).inc()


class SignatureVerifier:
    """`circleci-signature: v1=<hex HMAC-SHA256 of the raw body>`, against every secret.

    Only v1 is checked, the newest version, so that no one can force a downgrade (api-notes §4);
    several secrets are accepted at once so a secret can be rotated without losing events.
    """

    def __init__(self, secrets: Sequence[SecretStr]) -> None:
        if not secrets:
            raise ValueError("at least one webhook secret is needed")
        self._keyed = [
            hmac.new(s.get_secret_value().encode(), digestmod=hashlib.sha256) for s in secrets
        ]

    def verify(self, body: bytes, header: str | None) -> bool:
        if not header:
            return False
        offered = [
            value.strip().encode()
            for version, _, value in (part.partition("=") for part in header.split(","))
            if version.strip() == "v1"
        ]
        if not offered:
            return False
        verified = False
        for keyed in self._keyed:
            mac = keyed.copy()
            mac.update(body)
            expected = mac.hexdigest().encode()
            for candidate in offered:
                # Every comparison runs, so the time taken says nothing about which matched.
                verified |= hmac.compare_digest(expected, candidate)
        return verified


class RecentIds:
    """A bounded memory of event ids; the oldest is forgotten first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)


@dataclass(frozen=True, slots=True)
class _Result:
    status: int
    outcome: str
    event: str = OTHER_EVENT

    def response(self) -> Response:
        return PlainTextResponse(f"{self.outcome}\n", status_code=self.status)


class WebhookReceiver:
    """Applies verified events to the state through `State.apply`, like polling does.

    `projects` is the live collector's map of tracked projects (it grows as orgs are
    discovered); each one's BranchPolicy places the event's branch. `on_applied` asks the
    publisher to re-render.
    """

    def __init__(
        self,
        secrets: Sequence[SecretStr],
        *,
        projects: Mapping[str, ProjectCollector],
        state: State,
        on_applied: Callable[[], None],
        telemetry: WebhookTelemetry,
        clock: Callable[[], float] = time.time,
        dedupe_size: int = DEDUPE_SIZE,
    ) -> None:
        self.verifier = SignatureVerifier(secrets)
        self.projects = projects
        self.state = state
        self.on_applied = on_applied
        self.telemetry = telemetry
        self.clock = clock
        self.seen = RecentIds(dedupe_size)

    async def handle(self, request: Request) -> Response:
        result = await self._receive(request)
        self.telemetry.count(result.event, result.outcome)
        return result.response()

    async def _receive(self, request: Request) -> _Result:
        declared = request.headers.get("circleci-event-type", "")
        label = declared if declared in EVENT_TYPES else OTHER_EVENT
        try:
            body = await _read_limited(request)
        except ClientDisconnect:
            return _Result(400, "malformed", label)
        if body is None:
            return _Result(413, "too_large", label)
        if not self.verifier.verify(body, request.headers.get("circleci-signature")):
            return _Result(401, "invalid_signature", label)
        return self.receive_verified(body, label)

    def receive_verified(self, body: bytes, label: str = OTHER_EVENT) -> _Result:
        """Parse, deduplicate and apply a body whose signature checked out; `label` is the
        event type its header declared (trusted now)."""
        try:
            data = json.loads(body)
        except ValueError:
            return _Result(400, "malformed", label)
        if not isinstance(data, dict):
            return _Result(400, "malformed", label)
        event_type = data.get("type")
        if event_type not in EVENT_TYPES:
            # E.g. the "Test Ping Event", or an event type CircleCI adds later.
            logger.debug("ignored webhook event", extra={"event_type": str(event_type)[:64]})
            return _Result(202, "ignored")
        event_id = data.get("id")
        if isinstance(event_id, str) and event_id in self.seen:
            # A redelivery is byte-for-byte the event applied before: no need to parse it again.
            return _Result(200, "duplicate", event_type)
        try:
            parsed = parse_event(data)
        except UnusableEvent as err:
            logger.debug("ignored webhook event", extra={"reason": str(err)})
            return _Result(202, "ignored", event_type)
        except MalformedEvent as err:
            logger.warning("malformed webhook event", extra={"error": str(err)})
            return _Result(400, "malformed", event_type)
        if not self._apply(parsed):
            return _Result(202, "ignored", event_type)
        self.seen.add(parsed.id)
        self.on_applied()
        return _Result(200, "applied", event_type)

    def _apply(self, parsed: ParsedEvent) -> bool:
        collector = self.projects.get(parsed.project)
        # Until the project is read, its policy does not know the default branch; polling
        # will see the run, so nothing is lost by ignoring the event.
        if collector is None or not collector.policy_known:
            return False
        collector.note_webhook(self.clock())
        place = collector.policy.place(*parsed.ref())
        if place is None:
            return False
        update = parsed.update(place)
        self.state.apply(update)
        # Runs from before start-up follow polling's history rules: only watched ones queue.
        if (
            isinstance(update, JobUpdate)
            and (update.stopped_at or update.created_at) >= self.state.watch_start
        ):
            collector.queue_job_details(update)
        return True

    def route(self) -> Route:
        return Route(PATH, self.handle, methods=["POST"])


async def _read_limited(request: Request) -> bytes | None:
    """The body, or None when it is over MAX_BODY; never reads more than MAX_BODY + 1 bytes."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None  # the rest is never read
        chunks.append(chunk)
    return b"".join(chunks)


def webhook_app(receiver: WebhookReceiver) -> Starlette:
    """The app of the separate webhook listener: the webhook endpoint and nothing else."""
    return Starlette(routes=[receiver.route()])
