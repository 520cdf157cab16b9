"""The token never shows up in logs, errors or reprs (common rules: never a secret in output)."""

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from exporter.circleci import CircleCIClient, CircleCIError


@pytest.mark.anyio
async def test_token_absent_from_logs_errors_and_repr(
    api: respx.MockRouter,
    make_client: Callable[..., CircleCIClient],
    load: Callable[[str], Any],
    token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    api.get("/v2/project/gh/acme/api/job/8812").mock(
        side_effect=[httpx.Response(500), httpx.Response(200, json=load("job-details.json"))]
    )
    # A server echoing the token back must not smuggle it into our error text.
    api.get("/v2/project/gh/acme/api").respond(
        401, json={"message": f"Invalid token provided: {token}"}
    )
    api.get("/v2/pipeline/p-1").respond(200, text=f"not json {token}")
    api.get("/v2/workflow/w-1/job").mock(side_effect=httpx.ConnectError(f"refused {token}"))

    errors: list[CircleCIError] = []
    async with make_client(max_retries=1) as client:
        await client.get_job_details("gh/acme/api", 8812)

        async def jobs() -> list[object]:
            return [job async for job in client.iter_workflow_jobs("w-1")]

        for call in (client.get_project("gh/acme/api"), client.get_pipeline("p-1"), jobs()):
            with pytest.raises(CircleCIError) as caught:
                await call
            errors.append(caught.value)
        client_repr = repr(client)

    assert [type(error).__name__ for error in errors] == [
        "TokenRefusedError",
        "MalformedResponseError",
        "TransportFailedError",
    ]
    assert all("***" in str(error) for error in errors)
    for error in errors:
        assert token not in str(error) and token not in repr(error)
    assert token not in client_repr
    assert caplog.records, "the client logs at DEBUG, so there must be records to check"
    for record in caplog.records:
        assert token not in record.getMessage()
        assert token not in repr(record.__dict__)
    assert {r.levelno for r in caplog.records if r.name == "exporter.circleci.client"} == {
        logging.DEBUG,
        logging.WARNING,
    }
