"""Injected faults: 429 + rate-limit headers, 5xx, latency, malformed bodies, a rate limit.

Hangs need a real socket to time out; they are tested in test_sim_server.py.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from exporter.simulator import FaultRule, Faults, World, create_app

pytestmark = pytest.mark.anyio


async def test_rate_limited_429_carries_retry_after_and_both_header_families(
    world: World, faults: Faults, api: httpx.AsyncClient
) -> None:
    faults.add(match="getCurrentUser", rate_limited_ratio=1.0, retry_after=7)
    response = await api.get("/me")
    assert response.status_code == 429
    assert response.json() == {"message": "Rate limit exceeded."}
    assert response.headers["Retry-After"] == "7"
    for family in ("RateLimit", "X-RateLimit"):
        assert response.headers[f"{family}-Remaining"] == "0"
        assert response.headers[f"{family}-Reset"] == "7"
        assert f"{family}-Limit" in response.headers
    assert (await api.get("/me/collaborations")).status_code == 200  # other operations unaffected


async def test_server_errors_by_path_pattern(
    world: World, faults: Faults, api: httpx.AsyncClient
) -> None:
    faults.add(match="/api/v2/insights/*", error_ratio=1.0, error_status=503)
    slug = world.projects[0].slug
    response = await api.get(f"/insights/{slug}/workflows")
    assert response.status_code == 503
    assert "message" in response.json()
    assert (await api.get(f"/project/{slug}")).status_code == 200


async def test_error_ratio_is_a_share_and_repeatable(world: World, api: httpx.AsyncClient) -> None:
    async def codes(seed: int) -> list[int]:
        faults = Faults(seed)
        faults.add(match="getCurrentUser", error_ratio=0.5)
        transport = httpx.ASGITransport(app=create_app(world, faults))
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://sim/api/v2",
            headers={"Circle-Token": world.config.token},
        ) as client:
            return [(await client.get("/me")).status_code for _ in range(40)]

    first, again = await codes(3), await codes(3)
    assert first == again
    assert 5 < first.count(502) < 35


async def test_latency_delays_the_answer(faults: Faults, api: httpx.AsyncClient) -> None:
    faults.add(match="getCurrentUser", latency=0.2, jitter=0.05)
    started = time.monotonic()
    assert (await api.get("/me")).status_code == 200
    assert time.monotonic() - started >= 0.2


async def test_malformed_body_is_not_json(faults: Faults, api: httpx.AsyncClient) -> None:
    faults.add(match="getCollaborations", malformed_ratio=1.0)
    response = await api.get("/me/collaborations")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


async def test_token_bucket_rate_limit(faults: Faults, api: httpx.AsyncClient) -> None:
    faults.add(match="*", requests_per_second=2, burst=3)
    codes = [(await api.get("/me")).status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200]
    assert 429 in codes[3:]
    limited = await api.get("/me")
    assert int(limited.headers["Retry-After"]) >= 1


async def test_control_endpoint_adds_lists_and_clears_rules(api: httpx.AsyncClient) -> None:
    control = "http://sim/__sim/faults"
    added = await api.post(control, json={"match": "getCurrentUser", "error_ratio": 1.0})
    assert added.status_code == 200
    assert added.json()["rules"][0]["match"] == "getCurrentUser"
    assert (await api.get("/me")).status_code == 502
    bad = await api.post(control, json={"match": "x", "error_ratio": 3})
    assert bad.status_code == 400
    assert "error_ratio" in bad.json()["message"]
    assert (await api.delete(control)).json() == {"rules": []}
    assert (await api.get("/me")).status_code == 200


def test_rules_validate_their_fields() -> None:
    with pytest.raises(ValueError):
        FaultRule(error_status=404)
    with pytest.raises(ValueError):
        FaultRule.model_validate({"unknown_field": 1})


async def test_stats_count_requests_per_operation(world: World, api: httpx.AsyncClient) -> None:
    slug = world.projects[0].slug
    for _ in range(3):
        await api.get(f"/project/{slug}/pipeline")
    await api.get("/me")
    await api.get("/project/gh/nobody/nothing")
    stats = (await api.get("http://sim/__sim/stats")).json()
    assert stats["requests"] == {
        "getCurrentUser": 1,
        "getProjectBySlug": 1,
        "listPipelinesForProject": 3,
    }
    assert stats["requests_total"] == 5
    assert stats["responses"] == {"200": 4, "404": 1}
