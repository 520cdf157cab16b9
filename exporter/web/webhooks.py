"""The CircleCI webhook receiver: `POST /webhooks/circleci`.

Each request is verified, parsed and applied to the state on the event loop, with no API call,
so it answers within milliseconds (CircleCI retries after 10 s without a 2xx,
docs/circleci-api.md §Webhook deliveries).
Statuses: 401 missing or bad signature, 413 body over 1 MiB, 408 body not received within
`webhooks.body_timeout`, 503 more than `webhooks.max_connections` requests in flight, 400 not
an event (also JSON nested too deep to parse), 202 an event that is not applied (unknown type,
untracked project or branch, or a project another shard owns: outcome `other_shard`), 200
applied or duplicate. Nothing is applied unless the request
is verified and well-formed.

This layer only verifies: applying an event to the collectors' picture is the callable it is
given (the live collector's `apply_event`, wired by `exporter.components`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import anyio
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from exporter.catalog import BY_NAME
from exporter.webhook_outcome import EventOutcome

logger = logging.getLogger(__name__)

PATH = "/webhooks/circleci"
# CircleCI's payloads are a few KiB; anything this large is not one of them.
MAX_BODY = 1024 * 1024
# Event ids remembered for deduplication. Redeliveries come minutes to hours apart (the retry
# schedule is undocumented, docs/circleci-api.md §Webhook deliveries); at 1,000 events/s this
# still covers over a minute, and behind it the state counts each run once by its id anyway.
DEDUPE_SIZE = 100_000
# Defaults of the listener's limits (each a `webhooks.` setting).
DEDUPE_MAX_BYTES = 8 * 1024 * 1024
BODY_TIMEOUT = 10.0
MAX_CONNECTIONS = 256

OUTCOMES = (
    "applied", "duplicate", "invalid_signature", "malformed", "ignored", "too_large", "timeout",
    "overloaded", "other_shard",
)  # fmt: skip
# The `event` label of requests whose type is unknown or unverified: an attacker must not be
# able to mint label values.
OTHER_EVENT = "other"

# A verified, decoded event → what became of it (applied, ignored, other_shard); raises
# ValueError when the payload is not shaped like an event.
ApplyEvent = Callable[[dict[str, object]], EventOutcome]


class WebhookTelemetry:
    def __init__(self, registry: CollectorRegistry, event_types: Sequence[str]) -> None:
        spec = BY_NAME["circleci_exporter_webhook_events_total"]
        self._events = Counter(spec.name, spec.help, spec.labels, registry=registry)
        for event in (*event_types, OTHER_EVENT):
            for outcome in OUTCOMES:
                self._events.labels(event, outcome)
        spec = BY_NAME["circleci_exporter_webhook_dedupe_bytes"]
        self.dedupe_bytes = Gauge(spec.name, spec.help, registry=registry)

    def count(self, event: str, outcome: str) -> None:
        self._events.labels(event, outcome).inc()


class SignatureVerifier:
    """`circleci-signature: v1=<hex HMAC-SHA256 of the raw body>`, against every secret.

    Only v1 is checked, the newest version, so that no one can force a downgrade
    (docs/circleci-api.md §Webhook signatures); several secrets are accepted at once so a secret
    can be rotated without losing events.
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
    """A bounded memory of event ids, in entries and in bytes (a signed event may carry an id
    of any length); the oldest is forgotten first."""

    def __init__(self, size: int, max_bytes: int = DEDUPE_MAX_BYTES) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        if event_id in self._ids or len(event_id) > self.max_bytes:
            return
        self._ids[event_id] = None
        self.bytes += len(event_id)
        while len(self._ids) > self.size or self.bytes > self.max_bytes:
            oldest, _ = self._ids.popitem(last=False)
            self.bytes -= len(oldest)


@dataclass(frozen=True, slots=True)
class _Result:
    status: int
    outcome: str
    event: str = OTHER_EVENT

    def response(self) -> Response:
        return PlainTextResponse(f"{self.outcome}\n", status_code=self.status)


class WebhookReceiver:
    """Verifies, deduplicates and hands events to `apply`, on the event loop.

    `event_types` are the types `apply` understands (others are acknowledged and ignored);
    `on_applied` asks the publisher to re-render.
    """

    def __init__(
        self,
        secrets: Sequence[SecretStr],
        *,
        apply: ApplyEvent,
        event_types: Sequence[str],
        on_applied: Callable[[], None],
        telemetry: WebhookTelemetry,
        dedupe_size: int = DEDUPE_SIZE,
        dedupe_max_bytes: int = DEDUPE_MAX_BYTES,
        body_timeout: float = BODY_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.verifier = SignatureVerifier(secrets)
        self.apply = apply
        self.event_types = frozenset(event_types)
        self.on_applied = on_applied
        self.telemetry = telemetry
        self.seen = RecentIds(dedupe_size, dedupe_max_bytes)
        self.body_timeout = body_timeout
        self.max_connections = max_connections
        self._in_flight = 0

    async def handle(self, request: Request) -> Response:
        if self._in_flight >= self.max_connections:
            # Slow uploads by the thousand once exhausted the file descriptors of the whole
            # process; past the cap a request is refused before its body is read.
            result = _Result(503, "overloaded")
        else:
            self._in_flight += 1
            try:
                result = await self._receive(request)
            finally:
                self._in_flight -= 1
        self.telemetry.count(result.event, result.outcome)
        return result.response()

    async def _receive(self, request: Request) -> _Result:
        declared = request.headers.get("circleci-event-type", "")
        label = declared if declared in self.event_types else OTHER_EVENT
        try:
            with anyio.fail_after(self.body_timeout):
                body = await _read_limited(request)
        except ClientDisconnect:
            return _Result(400, "malformed", label)
        except TimeoutError:
            return _Result(408, "timeout", label)
        if body is None:
            return _Result(413, "too_large", label)
        if not self.verifier.verify(body, request.headers.get("circleci-signature")):
            return _Result(401, "invalid_signature", label)
        return self.receive_verified(body, label)

    def receive_verified(self, body: bytes, label: str = OTHER_EVENT) -> _Result:
        """Decode, deduplicate and apply a body whose signature checked out; `label` is the
        event type its header declared (trusted now)."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
            return _Result(400, "malformed", label)
        if not isinstance(data, dict):
            return _Result(400, "malformed", label)
        event_type = data.get("type")
        if event_type not in self.event_types:
            # E.g. the "Test Ping Event", or an event type CircleCI adds later.
            logger.debug("ignored webhook event", extra={"event_type": str(event_type)[:64]})
            return _Result(202, "ignored")
        event_id = data.get("id")
        if isinstance(event_id, str) and event_id in self.seen:
            # A redelivery is byte-for-byte the event applied before: no need to parse it again.
            return _Result(200, "duplicate", event_type)
        try:
            outcome = self.apply(data)
        except ValueError as err:
            logger.warning("malformed webhook event", extra={"error": str(err)})
            return _Result(400, "malformed", event_type)
        except RecursionError:  # a body nested too deep for the parser
            logger.warning("malformed webhook event", extra={"error": "nested too deep"})
            return _Result(400, "malformed", event_type)
        if outcome is not EventOutcome.APPLIED:
            return _Result(202, outcome.value, event_type)
        if isinstance(event_id, str):  # always, once `apply` accepted the event
            self.seen.add(event_id)
            self.telemetry.dedupe_bytes.set(self.seen.bytes)
        self.on_applied()
        return _Result(200, "applied", event_type)

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
