"""Fault injection per endpoint: latency, 429s, 5xx, hangs, malformed bodies, a rate limit."""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response


class FaultRule(BaseModel):
    """Faults for the requests whose operationId equals `match` or whose path matches the glob."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: str = "*"
    latency: float = Field(0.0, ge=0, description="seconds added to every matching request")
    jitter: float = Field(0.0, ge=0, description="up to this many extra seconds, uniformly")
    rate_limited_ratio: float = Field(0.0, ge=0, le=1, description="share answered with 429")
    retry_after: int = Field(1, ge=0, description="Retry-After seconds on injected 429s")
    error_ratio: float = Field(0.0, ge=0, le=1, description="share answered with a 5xx")
    error_status: int = Field(502, ge=500, le=599)
    timeout_ratio: float = Field(0.0, ge=0, le=1, description="share that hangs")
    hang_seconds: float = Field(60.0, ge=0, description="how long a hanging request hangs")
    malformed_ratio: float = Field(0.0, ge=0, le=1, description="share with a truncated body")
    requests_per_second: float | None = Field(None, gt=0, description="token-bucket limit")
    burst: int | None = Field(None, ge=1, description="bucket size; defaults to one second's worth")
    # Live quirks clients must survive, off by default: the default shapes are the ones
    # CircleCI's own client parses (docs/circleci-api.md §Pagination, §Test results).
    omit_last_page_token_ratio: float = Field(
        0.0, ge=0, le=1, description="share of last pages sent without the next_page_token key"
    )
    test_quirks_ratio: float = Field(
        0.0, ge=0, le=1, description="share of test results with run_time as a string, no file"
    )

    def matches(self, operation_id: str, path: str) -> bool:
        return self.match == operation_id or fnmatchcase(path, self.match)


@dataclass
class FaultDecision:
    """What to do to one request: wait, answer instead of the handler, or corrupt the answer."""

    delay: float = 0.0
    response: Response | None = None
    malformed: bool = False
    omit_last_page_token: bool = False
    test_quirks_ratio: float = 0.0


@dataclass
class _Bucket:
    rate: float
    capacity: float
    tokens: float
    updated: float = field(default_factory=time.monotonic)

    def take(self) -> float:
        """Take a token; return 0 on success, else the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class Faults:
    """The active fault rules; decisions draw from a seeded stream so runs are repeatable."""

    def __init__(self, seed: int = 1) -> None:
        self._rng = random.Random(f"{seed}:faults")
        self._rules: list[FaultRule] = []
        self._buckets: dict[int, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def rules(self) -> list[FaultRule]:
        return list(self._rules)

    def add(self, rule: FaultRule | None = None, **fields: object) -> FaultRule:
        """`faults.add(match="getTests", error_ratio=1.0)` or `faults.add(FaultRule(...))`."""
        new_rule = rule if rule is not None else FaultRule.model_validate(fields)
        with self._lock:
            self._rules.append(new_rule)
        return new_rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._buckets.clear()

    def decide(self, operation_id: str, path: str) -> FaultDecision:
        decision = FaultDecision()
        with self._lock:
            for index, rule in enumerate(self._rules):
                if rule.matches(operation_id, path):
                    self._apply(index, rule, decision)
        return decision

    def _apply(self, index: int, rule: FaultRule, decision: FaultDecision) -> None:
        rng = self._rng
        decision.delay += rule.latency + (rng.uniform(0, rule.jitter) if rule.jitter else 0.0)
        if rule.omit_last_page_token_ratio and rng.random() < rule.omit_last_page_token_ratio:
            decision.omit_last_page_token = True
        decision.test_quirks_ratio = max(decision.test_quirks_ratio, rule.test_quirks_ratio)
        if decision.response is not None:
            return
        if rule.requests_per_second is not None:
            wait = self._bucket(index, rule).take()
            if wait:
                decision.response = rate_limited(math.ceil(wait), rule.requests_per_second)
                return
        if rule.rate_limited_ratio and rng.random() < rule.rate_limited_ratio:
            decision.response = rate_limited(rule.retry_after, rule.requests_per_second)
        elif rule.error_ratio and rng.random() < rule.error_ratio:
            decision.response = JSONResponse(
                {"message": "Internal server error"}, status_code=rule.error_status
            )
        elif rule.timeout_ratio and rng.random() < rule.timeout_ratio:
            decision.delay += rule.hang_seconds
            decision.response = JSONResponse({"message": "Gateway Timeout"}, status_code=504)
        elif rule.malformed_ratio and rng.random() < rule.malformed_ratio:
            decision.malformed = True

    def apply_quirks(self, body: object, decision: FaultDecision) -> object:
        """The live quirks `decision` asks for, applied to a JSON body about to be sent."""
        if not isinstance(body, dict):
            return body
        if decision.omit_last_page_token and body.get("next_page_token", "") is None:
            body = {key: value for key, value in body.items() if key != "next_page_token"}
        if decision.test_quirks_ratio:
            body = dict(body)  # never change an answer the handler may have cached
            with self._lock:
                for key in ("items", "tests"):  # v2 getTests pages, v1.1 test metadata
                    if isinstance(body.get(key), list):
                        body[key] = [self._test_quirk(item, decision) for item in body[key]]
        return body

    def _test_quirk(self, item: object, decision: FaultDecision) -> object:
        """Live: `run_time` sometimes a string, `file` sometimes absent (MCP server schemas)."""
        is_test = isinstance(item, dict) and {"run_time", "file", "result"} <= item.keys()
        if not is_test or self._rng.random() >= decision.test_quirks_ratio:
            return item
        assert isinstance(item, dict)
        return {k: str(v) if k == "run_time" else v for k, v in item.items() if k != "file"}

    def _bucket(self, index: int, rule: FaultRule) -> _Bucket:
        bucket = self._buckets.get(index)
        if bucket is None:
            assert rule.requests_per_second is not None
            capacity = float(rule.burst or max(1, math.ceil(rule.requests_per_second)))
            bucket = self._buckets[index] = _Bucket(rule.requests_per_second, capacity, capacity)
        return bucket


def rate_limited(retry_after: int, limit: float | None) -> Response:
    """429 with both header families: CircleCI services vary (docs/circleci-api.md §Rate limits)."""
    headers = {
        "Retry-After": str(retry_after),
        "RateLimit-Limit": str(math.ceil(limit or 1)),
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": str(retry_after),
        "X-RateLimit-Limit": str(math.ceil(limit or 1)),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(retry_after),
    }
    return JSONResponse({"message": "Rate limit exceeded."}, status_code=429, headers=headers)


def malform(body: bytes) -> bytes:
    """A JSON body cut off half-way: what a dropped connection or a broken proxy delivers."""
    return body[: max(1, len(body) // 2)]
