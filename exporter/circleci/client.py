"""The async CircleCI API client: the only code in the exporter that speaks HTTP to CircleCI.

Every request goes through the process-wide `RateLimiter`, is counted in `ApiTelemetry` under its
OpenAPI operationId, and is retried on 429, 5xx, timeouts and connection errors. 401, 403, 404
and other 4xx are final. Responses are parsed into the lenient models of `exporter.circleci.models`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import anyio
import httpx
from httpx import codes
from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError

from exporter import __version__
from exporter.circleci import models, slugs
from exporter.circleci.breaker import CircuitBreaker
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
from exporter.circleci.ratelimit import RateLimiter
from exporter.circleci.redact import Redactor
from exporter.circleci.retry import Backoff
from exporter.circleci.telemetry import ApiTelemetry

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)
ItemT = TypeVar("ItemT", bound=models.ApiModel)
ValidatedT = TypeVar("ValidatedT")

QueryValue = str | int | bool | Sequence[str]
Query = Mapping[str, QueryValue | None]
# What carries the client's requests: tests and benchmarks swap in their own, so that nothing
# outside this package needs httpx.
Transport = httpx.AsyncBaseTransport

_STATUS_ERRORS: dict[int, type[ApiStatusError]] = {
    401: TokenRefusedError,
    403: ForbiddenError,
    404: NotFoundError,
}
_MAX_MESSAGE_CHARS = 200
_MAX_TEXT_BYTES = 4096  # of a body quoted in an error message
# Bodies above this are parsed in a worker thread, off the event loop; a typical page is ~20 kB.
_PARSE_IN_THREAD_BYTES = 256 * 1024
# Defaults of the limits (see ApiSettings, where each is a setting).
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_PAGES = 100
# Idle pooled connections are dropped after this many seconds: below any server's keep-alive
# timeout we know of (uvicorn's default 5 s, the simulator's 30 s), so the client never reuses a
# connection the server is closing at that very moment.
KEEPALIVE_EXPIRY_SECONDS = 4.0
# What reusing a pooled connection the server has just closed looks like: the request was sent
# but no response came. Safe to resend at once for an idempotent GET.
_STALE_CONNECTION = frozenset(
    error.__name__ for error in (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
)
_OUTPUT_LINES = TypeAdapter(list[models.OutputLine])


class CircleCIClient:
    """Async client for CircleCI API v2 (and the v1.1 single-job endpoint).

    `base_url` is the API root, e.g. `https://circleci.com/api`. `token` may be None for servers
    that need none (the simulator). Use as `async with CircleCIClient(...) as client:`.
    """

    def __init__(
        self,
        base_url: str,
        token: SecretStr | None,
        *,
        limiter: RateLimiter,
        telemetry: ApiTelemetry,
        timeout: float = 30.0,
        max_retries: int = 5,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_pages: int = DEFAULT_MAX_PAGES,
        breaker_failures: int = 10,
        breaker_max_pause: float = 300.0,
        transport: Transport | None = None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if max_response_bytes < 1 or max_pages < 1:
            raise ValueError("max_response_bytes and max_pages must be >= 1")
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._redact = Redactor([token.get_secret_value()] if token is not None else [])
        self._limiter = limiter
        self._telemetry = telemetry
        self._deadline = timeout
        self._max_retries = max_retries
        self._max_response_bytes = max_response_bytes
        self._max_pages = max_pages
        self._breaker = CircuitBreaker(breaker_failures, max_pause=breaker_max_pause)
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        headers = {
            "Accept": "application/json",
            "User-Agent": f"ocean-ci-exporter/{__version__}",
        }
        if token is not None:
            headers["Circle-Token"] = token.get_secret_value()
        self._http = httpx.AsyncClient(
            base_url=self._base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS),
            http2=True,
            transport=transport,
        )
        # Pre-signed step output URLs point at another host (S3): never send them the token.
        self._presigned = httpx.AsyncClient(
            headers={k: v for k, v in headers.items() if k != "Circle-Token"},
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS),
            transport=transport,
        )

    def __repr__(self) -> str:
        token = "set" if self._token is not None else "none"
        return f"CircleCIClient(base_url={self._base_url!r}, token={token})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._presigned.aclose()

    # --- projects ------------------------------------------------------------------------------

    async def get_project(self, project_slug: str) -> models.Project:
        return await self._get_model(
            "getProjectBySlug", f"/v2/project/{_project(project_slug)}", models.Project
        )

    # --- pipelines, workflows, jobs -------------------------------------------------------------

    def iter_project_pipelines(
        self, project_slug: str, *, branch: str | None = None
    ) -> AsyncIterator[models.Pipeline]:
        """The project's pipelines, newest first."""
        return self._paginate(
            "listPipelinesForProject",
            f"/v2/project/{_project(project_slug)}/pipeline",
            models.Pipeline,
            {"branch": branch},
        )

    def iter_project_pipeline_pages(
        self, project_slug: str, *, branch: str | None = None, max_pages: int | None = None
    ) -> AsyncIterator[list[models.Pipeline]]:
        """The project's pipelines, newest first, a page (20) at a time; at most `max_pages`
        pages (default: the client's cap)."""
        return self._pages(
            "listPipelinesForProject",
            f"/v2/project/{_project(project_slug)}/pipeline",
            models.Pipeline,
            {"branch": branch},
            max_pages=max_pages,
        )

    def iter_org_pipelines(
        self, org_slug: str, *, mine: bool = False
    ) -> AsyncIterator[models.Pipeline]:
        """Newest pipelines across the org's most recently built projects (at most 250 projects)."""
        return self._paginate(
            "listPipelines",
            "/v2/pipeline",
            models.Pipeline,
            {"org-slug": slugs.normalize_org_slug(org_slug), "mine": True if mine else None},
        )

    def iter_org_pipeline_pages(
        self, org_slug: str, *, mine: bool = False
    ) -> AsyncIterator[list[models.Pipeline]]:
        """The org feed a page (20) at a time; the caller decides where to stop."""
        return self._pages(
            "listPipelines",
            "/v2/pipeline",
            models.Pipeline,
            {"org-slug": slugs.normalize_org_slug(org_slug), "mine": True if mine else None},
        )

    async def get_pipeline(self, pipeline_id: str) -> models.Pipeline:
        return await self._get_model(
            "getPipelineById", f"/v2/pipeline/{_segment(pipeline_id)}", models.Pipeline
        )

    def iter_pipeline_workflows(self, pipeline_id: str) -> AsyncIterator[models.Workflow]:
        return self._paginate(
            "listWorkflowsByPipelineId",
            f"/v2/pipeline/{_segment(pipeline_id)}/workflow",
            models.Workflow,
        )

    def iter_workflow_jobs(self, workflow_id: str) -> AsyncIterator[models.Job]:
        return self._paginate(
            "listWorkflowJobs", f"/v2/workflow/{_segment(workflow_id)}/job", models.Job
        )

    async def get_job_details(self, project_slug: str, job_number: int) -> models.JobDetails:
        return await self._get_model(
            "getJobDetails",
            f"/v2/project/{_project(project_slug)}/job/{job_number}",
            models.JobDetails,
        )

    def iter_job_tests(
        self, project_slug: str, job_number: int
    ) -> AsyncIterator[models.TestResult]:
        return self._paginate(
            "getTests",
            f"/v2/project/{_project(project_slug)}/{job_number}/tests",
            models.TestResult,
        )

    async def get_job_v1(self, project_slug: str, job_number: int) -> models.JobV1:
        """API v1.1 single job, the only source of step-level results."""
        path = f"/v1.1/project/{_quote_path(slugs.v1_project_slug(project_slug))}/{job_number}"
        return await self._get_model("getJobV1", path, models.JobV1)

    async def get_action_output(self, output_url: str) -> list[models.OutputLine]:
        """A step action's log from its pre-signed `output_url`
        (docs/circleci-api.md §v1.1 single job)."""
        shape = partial(_validate, "getActionOutput", _OUTPUT_LINES.validate_python)
        lines: list[models.OutputLine] = await self._request(
            "getActionOutput", "GET", output_url, presigned=True, shape=shape
        )
        return lines

    async def get_private_step_output(
        self, project_slug: str, job_number: int, index: int, step: int, stream: str
    ) -> str:
        """Plain text of one action's `output` (stdout) or `error` (stderr) stream, from the
        private endpoint CircleCI's own tooling reads (docs/circleci-api.md §v1.1 single job)."""
        if stream not in ("output", "error"):
            raise ValueError(f"stream must be output or error, got {stream!r}")
        path = f"/private/output/raw/{_project(project_slug)}/{job_number}/{stream}/{index}/{step}"
        text: str = await self._request("getPrivateStepOutput", "GET", path, text=True)
        return text

    def iter_project_schedules(self, project_slug: str) -> AsyncIterator[models.Schedule]:
        return self._paginate(
            "listSchedulesForProject",
            f"/v2/project/{_project(project_slug)}/schedule",
            models.Schedule,
        )

    # --- Insights -------------------------------------------------------------------------------

    def iter_workflow_metrics(
        self,
        project_slug: str,
        *,
        branch: str | None = None,
        all_branches: bool = False,
        reporting_window: models.ReportingWindow | None = None,
    ) -> AsyncIterator[models.ProjectWorkflowMetrics]:
        """Aggregated metrics per workflow; scoped to the default branch unless told otherwise."""
        return self._paginate(
            "getProjectWorkflowMetrics",
            f"/v2/insights/{_project(project_slug)}/workflows",
            models.ProjectWorkflowMetrics,
            {**_branch_scope(branch, all_branches), "reporting-window": reporting_window},
        )

    def iter_workflow_runs(
        self,
        project_slug: str,
        workflow_name: str,
        *,
        branch: str | None = None,
        all_branches: bool = False,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
    ) -> AsyncIterator[models.WorkflowRun]:
        if end_date is not None and start_date is None:
            raise ValueError("end_date needs start_date (CircleCI rejects end-date alone)")
        return self._paginate(
            "getProjectWorkflowRuns",
            f"/v2/insights/{_project(project_slug)}/workflows/{_segment(workflow_name)}",
            models.WorkflowRun,
            {
                **_branch_scope(branch, all_branches),
                "start-date": _iso(start_date),
                "end-date": _iso(end_date),
            },
        )

    def iter_job_runs(
        self,
        project_slug: str,
        workflow_name: str,
        job_name: str,
        *,
        branch: str | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
    ) -> AsyncIterator[models.JobRun]:
        """Individual runs of one job of a workflow, newest first, on one branch (default:
        the default branch); like the workflow runs, at most 90 days back."""
        if end_date is not None and start_date is None:
            raise ValueError("end_date needs start_date (CircleCI rejects end-date alone)")
        return self._paginate(
            "getProjectJobRuns",
            f"/v2/insights/{_project(project_slug)}/workflows/{_segment(workflow_name)}"
            f"/jobs/{_segment(job_name)}",
            models.JobRun,
            {"branch": branch, "start-date": _iso(start_date), "end-date": _iso(end_date)},
        )

    def iter_workflow_job_metrics(
        self,
        project_slug: str,
        workflow_name: str,
        *,
        branch: str | None = None,
        all_branches: bool = False,
        reporting_window: models.ReportingWindow | None = None,
        job_name: str | None = None,
    ) -> AsyncIterator[models.WorkflowJobMetrics]:
        return self._paginate(
            "getProjectWorkflowJobMetrics",
            f"/v2/insights/{_project(project_slug)}/workflows/{_segment(workflow_name)}/jobs",
            models.WorkflowJobMetrics,
            {
                **_branch_scope(branch, all_branches),
                "reporting-window": reporting_window,
                "job-name": job_name,
            },
        )

    async def get_workflow_summary(
        self,
        project_slug: str,
        workflow_name: str,
        *,
        branch: str | None = None,
        all_branches: bool = False,
    ) -> models.WorkflowSummary:
        return await self._get_model(
            "getWorkflowSummary",
            f"/v2/insights/{_project(project_slug)}/workflows/{_segment(workflow_name)}/summary",
            models.WorkflowSummary,
            _branch_scope(branch, all_branches),
        )

    async def get_workflow_test_metrics(
        self,
        project_slug: str,
        workflow_name: str,
        *,
        branch: str | None = None,
        all_branches: bool = False,
    ) -> models.TestMetrics:
        return await self._get_model(
            "getProjectWorkflowTestMetrics",
            f"/v2/insights/{_project(project_slug)}/workflows/{_segment(workflow_name)}"
            "/test-metrics",
            models.TestMetrics,
            _branch_scope(branch, all_branches),
        )

    async def get_flaky_tests(self, project_slug: str) -> models.FlakyTests:
        return await self._get_model(
            "getFlakyTests",
            f"/v2/insights/{_project(project_slug)}/flaky-tests",
            models.FlakyTests,
        )

    async def get_insights_branches(
        self, project_slug: str, *, workflow_name: str | None = None
    ) -> models.InsightsBranches:
        return await self._get_model(
            "getAllInsightsBranches",
            f"/v2/insights/{_project(project_slug)}/branches",
            models.InsightsBranches,
            {"workflow-name": workflow_name},
        )

    async def get_org_summary(
        self,
        org_slug: str,
        *,
        reporting_window: models.ReportingWindow | None = None,
        project_names: Sequence[str] = (),
    ) -> models.OrgSummary:
        return await self._get_model(
            "getOrgSummaryData",
            f"/v2/insights/{_quote_path(slugs.normalize_org_slug(org_slug))}/summary",
            models.OrgSummary,
            {"reporting-window": reporting_window, "project-names": list(project_names)},
        )

    # --- webhooks -------------------------------------------------------------------------------

    def iter_webhooks(self, project_id: str) -> AsyncIterator[models.Webhook]:
        """The project's outbound webhooks (`scope-id` is the project's uuid, not its slug)."""
        return self._paginate(
            "getWebhooks",
            "/v2/webhook",
            models.Webhook,
            {"scope-id": project_id, "scope-type": "project"},
        )

    async def create_webhook(
        self,
        *,
        project_id: str,
        name: str,
        url: str,
        events: Sequence[str],
        signing_secret: SecretStr,
        verify_tls: bool = True,
    ) -> models.Webhook:
        # The request body follows the spec's kebab-case keys (createWebhook requestBody).
        body = {
            "name": name,
            "url": url,
            "events": list(events),
            "verify-tls": verify_tls,
            "signing-secret": signing_secret.get_secret_value(),
            "scope": {"id": project_id, "type": "project"},
        }
        return await self._send_model("createWebhook", "POST", "/v2/webhook", body, models.Webhook)

    async def update_webhook(
        self,
        webhook_id: str,
        *,
        name: str | None = None,
        url: str | None = None,
        events: Sequence[str] | None = None,
        signing_secret: SecretStr | None = None,
        verify_tls: bool | None = None,
    ) -> models.Webhook:
        """Change only the given fields of a webhook."""
        changes: dict[str, Any] = {
            "name": name,
            "url": url,
            "events": list(events) if events is not None else None,
            "verify-tls": verify_tls,
            "signing-secret": signing_secret.get_secret_value() if signing_secret else None,
        }
        body = {key: value for key, value in changes.items() if value is not None}
        return await self._send_model(
            "updateWebhook", "PUT", f"/v2/webhook/{_segment(webhook_id)}", body, models.Webhook
        )

    # --- plumbing -------------------------------------------------------------------------------

    async def _get_model(
        self, operation: str, path: str, model: type[ModelT], query: Query | None = None
    ) -> ModelT:
        shape = partial(_validate, operation, model.model_validate)
        data: ModelT = await self._request(
            operation, "GET", path, params=_query(query or {}), shape=shape
        )
        return data

    async def _send_model(
        self, operation: str, method: str, path: str, body: dict[str, Any], model: type[ModelT]
    ) -> ModelT:
        shape = partial(_validate, operation, model.model_validate)
        data: ModelT = await self._request(operation, method, path, payload=body, shape=shape)
        return data

    async def _paginate(
        self,
        operation: str,
        path: str,
        item_model: type[ItemT],
        query: Query | None = None,
    ) -> AsyncIterator[ItemT]:
        """Yield items page by page; stops fetching as soon as the caller stops iterating."""
        async for page in self._pages(operation, path, item_model, query):
            for item in page:
                yield item

    async def _pages(
        self,
        operation: str,
        path: str,
        item_model: type[ItemT],
        query: Query | None = None,
        *,
        max_pages: int | None = None,
    ) -> AsyncIterator[list[ItemT]]:
        """Yield whole pages; the next one is fetched only when the caller asks for it."""
        limit = max_pages or self._max_pages
        params = _query(query or {})
        page_model = models.Page[item_model]  # type: ignore[valid-type]
        seen_tokens: set[str] = set()
        token: str | None = None
        pages = 0
        while True:
            if pages >= limit:
                # A server that always hands out a fresh token would be paged forever.
                self._telemetry.count_page_limit_hit(operation)
                logger.warning(
                    "stopped paging at the page limit; keeping the pages read",
                    extra={"endpoint": operation, "pages": pages, "setting": "api.max_pages"},
                )
                return
            pages += 1
            page_params = params.set("page-token", token) if token else params
            shape = partial(_validate, operation, page_model.model_validate)
            page = await self._request(operation, "GET", path, params=page_params, shape=shape)
            yield page.items
            token = page.next_page_token
            if not token:
                return
            if token in seen_tokens:
                raise PaginationLoopError(
                    operation,
                    f"page {pages} repeated an earlier page token; stopped to avoid a loop",
                )
            seen_tokens.add(token)

    async def _request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: httpx.QueryParams | None = None,
        payload: dict[str, Any] | None = None,
        text: bool = False,
        presigned: bool = False,
        shape: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Send one logical request, retrying what is worth retrying; returns the parsed JSON,
        validated by `shape` (off the event loop with the parse, for a large body), or with
        `text` the body as text. `presigned`: `path` is a whole URL that wants no token."""
        http = self._presigned if presigned else self._http
        attempt = 0
        resent_stale = False
        while True:
            outcome = await self._attempt(http, operation, method, path, params, payload, attempt)
            if isinstance(outcome, _Failure):
                stale = outcome.error_type in _STALE_CONNECTION
                if method == "GET" and stale and not resent_stale:
                    # Most likely a pooled connection closed under us, not a failing API: resend
                    # once on a fresh connection, without a warning, before counting a retry.
                    resent_stale = True
                    logger.debug(
                        "resending CircleCI request on a fresh connection",
                        extra={"endpoint": operation, "error_type": outcome.error_type},
                    )
                    continue
                response, failure = None, outcome
                reason: str | None = outcome.reason
                pause = self._breaker.failed()
                if pause is not None:
                    self._pause_everything("circuit_breaker", pause)
            else:
                response, failure = outcome, None
                self._breaker.answered()
                if response.is_success:
                    if text:
                        return response.text
                    return await self._parse(operation, response, shape)
                reason = _retry_reason(response.status_code)
            if reason is None:
                raise self._final_error(operation, response, failure, attempt + 1)
            wait = self._backoff.wait_for(response, attempt)
            if reason == "429":
                # A 429 is about the whole token, so every request waits, not only this one,
                # even when this request has no retry left.
                self._pause_everything("429", wait)
            if attempt >= self._max_retries:
                raise self._final_error(operation, response, failure, attempt + 1)
            self._telemetry.count_retry(operation, reason)
            logger.warning(
                "retrying CircleCI request",
                extra={
                    "endpoint": operation,
                    "reason": reason,
                    "attempt": attempt + 1,
                    "retry_in_seconds": round(wait, 3),
                },
            )
            if reason != "429":  # after a 429 the limiter holds this retry back with the others
                await self._sleep(wait)
            attempt += 1

    def _pause_everything(self, reason: str, seconds: float) -> None:
        self._limiter.block_until(self._limiter.now() + seconds)
        self._telemetry.pause(reason, seconds)
        if reason == "circuit_breaker":
            logger.warning(
                "CircleCI unreachable: every request paused",
                extra={"pause_seconds": round(seconds, 3), "reason": reason},
            )

    async def _attempt(
        self,
        http: httpx.AsyncClient,
        operation: str,
        method: str,
        path: str,
        params: httpx.QueryParams | None,
        payload: dict[str, Any] | None,
        attempt: int,
    ) -> _Response | _Failure:
        logged_path = path.partition("?")[0]  # a pre-signed URL's query is a credential
        async with self._limiter.slot():
            started = time.perf_counter()
            try:
                # One deadline for connect, headers and the whole body: httpx's timeouts are
                # per read, so a body trickling in a byte at a time would never time out.
                with anyio.fail_after(self._deadline):
                    response = await self._receive(http, operation, method, path, params, payload)
            except TimeoutError:
                failure = _Failure(
                    "timeout", "Deadline", f"no full answer within {self._deadline:g} s deadline"
                )
            except httpx.TransportError as exc:
                reason = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection"
                failure = _Failure(reason, type(exc).__name__, self._one_line(str(exc)))
            except ResponseTooLargeError:
                self._telemetry.observe_request(
                    operation, "too_large", time.perf_counter() - started
                )
                raise
            else:
                elapsed = time.perf_counter() - started
                self._telemetry.observe_request(operation, str(response.status_code), elapsed)
                logger.debug(
                    "CircleCI request",
                    extra={
                        "endpoint": operation,
                        "method": method,
                        "path": logged_path,
                        "attempt": attempt + 1,
                        "status": response.status_code,
                        "duration_seconds": round(elapsed, 3),
                    },
                )
                return response
        elapsed = time.perf_counter() - started
        code = "timeout" if failure.reason == "timeout" else "error"
        self._telemetry.observe_request(operation, code, elapsed)
        logger.debug(
            "CircleCI request failed",
            extra={
                "endpoint": operation,
                "method": method,
                "path": logged_path,
                "attempt": attempt + 1,
                "error_type": failure.error_type,
                "duration_seconds": round(elapsed, 3),
            },
        )
        return failure

    async def _receive(
        self,
        http: httpx.AsyncClient,
        operation: str,
        method: str,
        path: str,
        params: httpx.QueryParams | None,
        payload: dict[str, Any] | None,
    ) -> _Response:
        """Send the request and read the body, refusing one larger than `max_response_bytes`
        before it is all in memory (a chunked answer declares no size up front)."""
        request = http.build_request(method, path, params=params, json=payload)
        response = await http.send(request, stream=True)
        limit = self._max_response_bytes
        too_large = ResponseTooLargeError(
            operation, f"the response exceeds api.max_response_bytes ({limit} bytes)"
        )
        try:
            declared = response.headers.get("Content-Length", "")
            if declared.isascii() and declared.isdigit() and int(declared) > limit:
                raise too_large
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
        finally:
            await response.aclose()
        return _Response(response.status_code, response.headers, b"".join(chunks))

    async def _parse(
        self, operation: str, response: _Response, shape: Callable[[Any], Any] | None
    ) -> Any:
        # Parsing megabytes of JSON blocks the event loop (and so /metrics) for seconds.
        if len(response.body) > _PARSE_IN_THREAD_BYTES:
            return await anyio.to_thread.run_sync(self._loads, operation, response, shape)
        return self._loads(operation, response, shape)

    def _loads(
        self, operation: str, response: _Response, shape: Callable[[Any], Any] | None
    ) -> Any:
        """The body's JSON, validated into its model by `shape` when given."""
        try:
            data = json.loads(response.body)
        except (ValueError, RecursionError):
            snippet = self._one_line(response.snippet)
            raise MalformedResponseError(
                operation, f"response is not JSON (HTTP {response.status_code}): {snippet!r}"
            ) from None
        if shape is None:
            return data
        # Cleaned here, in one pass when needed at all, so that the models skip it (`_validate`).
        if not models.json_text_is_clean(response.body):
            data = models.clean_text(data)
        return shape(data)

    def _final_error(
        self,
        operation: str,
        response: _Response | None,
        failure: _Failure | None,
        attempts: int,
    ) -> CircleCIError:
        if response is None:
            assert failure is not None
            cause = failure.message or failure.error_type
            return TransportFailedError(
                operation, f"{failure.error_type} after {attempts} attempt(s): {cause}"
            )
        error_class = _STATUS_ERRORS.get(response.status_code, ApiStatusError)
        return error_class(operation, response.status_code, self._error_message(response))

    def _error_message(self, response: _Response) -> str:
        """CircleCI errors are `{"message": ...}`; proxies in front of it may send HTML or text."""
        try:
            body = json.loads(response.body)
        except (ValueError, RecursionError):
            return self._one_line(response.snippet) or response.reason_phrase
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            return self._one_line(body["message"])
        return self._one_line(response.snippet)

    def _one_line(self, text: str) -> str:
        line = self._redact(" ".join(text.split()))
        if len(line) > _MAX_MESSAGE_CHARS:
            line = line[: _MAX_MESSAGE_CHARS - 1] + "…"
        return line


@dataclass(frozen=True, slots=True)
class _Response:
    """An HTTP answer with its whole body read (within `max_response_bytes`)."""

    status_code: int
    headers: httpx.Headers
    body: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def snippet(self) -> str:
        """The start of the body, to quote in an error message."""
        return self.body[:_MAX_TEXT_BYTES].decode("utf-8", errors="replace")

    @property
    def reason_phrase(self) -> str:
        return codes.get_reason_phrase(self.status_code)


@dataclass(frozen=True, slots=True)
class _Failure:
    """No HTTP answer: `reason` is timeout or connection; `message` is already redacted."""

    reason: str
    error_type: str
    message: str


def _retry_reason(status_code: int) -> str | None:
    if status_code == 429:
        return "429"
    if status_code >= 500:
        return "5xx"
    return None


def _validate(operation: str, validate: Callable[..., ValidatedT], data: Any) -> ValidatedT:
    """`validate` (a `model_validate` or `validate_python`) of `data`, already through
    `clean_text` (`_loads`)."""
    try:
        return validate(data, context=models.CLEAN_TEXT_CONTEXT)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "response"
        raise MalformedResponseError(
            operation, f"unexpected response shape at {where}: {first['msg']}"
        ) from None


def _project(project_slug: str) -> str:
    """The slug goes in the path raw (`allowReserved`): `circleci/<org>/<project>` stays opaque."""
    return _quote_path(slugs.normalize_project_slug(project_slug))


def _quote_path(slug: str) -> str:
    return quote(slug, safe="/")


def _segment(value: str) -> str:
    """One path segment: workflow names may hold spaces or slashes."""
    return quote(value, safe="")


def _branch_scope(branch: str | None, all_branches: bool) -> dict[str, QueryValue | None]:
    if branch is not None and all_branches:
        raise ValueError("pass either branch or all_branches, not both")
    return {"branch": branch, "all-branches": True if all_branches else None}


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _query(query: Query) -> httpx.QueryParams:
    """Query pairs; None is left out, sequences repeat the key (`?branches=a&branches=b`)."""
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for key, value in query.items():
        if value is None:
            continue
        if isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif isinstance(value, str | int):
            pairs.append((key, str(value)))
        else:
            pairs.extend((key, item) for item in value)
    return httpx.QueryParams(pairs)
