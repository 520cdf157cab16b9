"""How long to wait before retrying a CircleCI request."""

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

import httpx


class Answer(Protocol):
    """An HTTP answer; only its headers matter for the wait."""

    @property
    def headers(self) -> httpx.Headers: ...


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base * 2**n)).

    Full jitter spreads the retries of many concurrent collectors instead of having them hit the
    API again in lockstep. `max_server_wait` bounds a server-requested wait (Retry-After,
    RateLimit-Reset) so one odd header cannot stall the exporter for hours.
    """

    base: float = 1.0
    cap: float = 60.0
    max_server_wait: float = 300.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int) -> float:
        return self.rng.uniform(0.0, min(self.cap, self.base * 2.0**attempt))

    def wait_for(self, response: Answer | None, attempt: int) -> float:
        """The server's requested wait when it sent one, else the jittered backoff."""
        requested = server_requested_wait(response.headers) if response is not None else None
        if requested is None:
            return self.delay(attempt)
        return min(requested, self.max_server_wait)


def server_requested_wait(headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """Seconds the server asked us to wait, from `Retry-After` or the `RateLimit-Reset` families.

    `Retry-After` is either seconds or an HTTP date (RFC 9110). CircleCI documents `RateLimit-Reset`
    and `X-RateLimit-Reset` as seconds until the window resets (docs/circleci-api.md §Rate limits);
    when both families are sent and disagree, the longer wait is the one that respects both limits.
    """
    retry_after = headers.get("Retry-After")
    if retry_after is not None:
        seconds = _seconds_or_http_date(retry_after, now or datetime.now(UTC))
        if seconds is not None:
            return seconds
    resets = [_seconds(headers.get(name)) for name in ("RateLimit-Reset", "X-RateLimit-Reset")]
    known = [value for value in resets if value is not None]
    return max(known) if known else None


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(0.0, seconds) if seconds == seconds else None  # NaN is not a wait


def _seconds_or_http_date(value: str, now: datetime) -> float | None:
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
