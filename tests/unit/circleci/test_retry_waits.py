import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from exporter.circleci.retry import Backoff, server_requested_wait

NOW = datetime(2025, 6, 3, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"Retry-After": format_datetime(NOW + timedelta(seconds=90), usegmt=True)}, 90.0),
        ({"Retry-After": format_datetime(NOW - timedelta(seconds=90), usegmt=True)}, 0.0),
        ({"RateLimit-Reset": "12"}, 12.0),
        ({"X-RateLimit-Reset": "4"}, 4.0),
        ({"RateLimit-Reset": "12", "X-RateLimit-Reset": "20"}, 20.0),
        ({"Retry-After": "3", "RateLimit-Reset": "60"}, 3.0),
        ({"Retry-After": "soon", "RateLimit-Reset": "8"}, 8.0),
        ({"Retry-After": "-5"}, 0.0),
        ({"RateLimit-Limit": "100"}, None),
        ({}, None),
    ],
)
def test_server_requested_wait(headers: dict[str, str], expected: float | None) -> None:
    assert server_requested_wait(httpx.Headers(headers), now=NOW) == expected


def test_full_jitter_stays_within_the_exponential_cap() -> None:
    backoff = Backoff(base=1.0, cap=10.0, rng=random.Random(42))
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (9, 10.0)]:
        delays = [backoff.delay(attempt) for _ in range(200)]
        assert all(0.0 <= delay <= ceiling for delay in delays)
        assert max(delays) > ceiling / 2  # jitter spreads over the whole range


def test_server_wait_is_capped() -> None:
    backoff = Backoff(max_server_wait=120.0)
    response = httpx.Response(429, headers={"Retry-After": "86400"})
    assert backoff.wait_for(response, attempt=0) == 120.0


def test_no_header_falls_back_to_backoff() -> None:
    backoff = Backoff(base=2.0, cap=60.0, rng=random.Random(3))
    expected = Backoff(base=2.0, cap=60.0, rng=random.Random(3)).delay(2)
    assert backoff.wait_for(httpx.Response(503), attempt=2) == expected
    assert 0.0 <= expected <= 8.0
