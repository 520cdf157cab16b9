"""The CircleCI API client, its models, rate limiter, request metrics, slugs and links."""

from exporter.circleci.client import CircleCIClient, Transport
from exporter.circleci.errors import (
    ApiStatusError,
    CircleCIError,
    ForbiddenError,
    MalformedResponseError,
    NotFoundError,
    PaginationLoopError,
    ResponseTooLargeError,
    TokenRefusedError,
    TransportFailedError,
)
from exporter.circleci.ratelimit import Priority, RateLimiter, requests_at
from exporter.circleci.retry import Backoff
from exporter.circleci.telemetry import ApiTelemetry

__all__ = [
    "ApiStatusError",
    "ApiTelemetry",
    "Backoff",
    "CircleCIClient",
    "CircleCIError",
    "ForbiddenError",
    "MalformedResponseError",
    "NotFoundError",
    "PaginationLoopError",
    "Priority",
    "RateLimiter",
    "ResponseTooLargeError",
    "TokenRefusedError",
    "Transport",
    "TransportFailedError",
    "requests_at",
]
