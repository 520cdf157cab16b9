"""The exporter's settings.

Sources, later ones win: defaults < YAML file (`--config` or `CIRCLECI_EXPORTER_CONFIG`) <
environment (`CIRCLECI_TOKEN`, `CIRCLECI_TOKEN_FILE`, `CIRCLECI_API_URL`, and any key as
`CIRCLECI_EXPORTER_<SECTION>__<KEY>`) < command-line flags.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import itertools
import logging
import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from exporter.durations import format_duration, parse_duration
from exporter.sharding import Shard, ordinal_of_pod_name

logger = logging.getLogger(__name__)

Duration = Annotated[float, BeforeValidator(parse_duration)]
InsightsWindow = Literal[
    "last-24-hours", "last-7-days", "last-30-days", "last-60-days", "last-90-days"
]

# One slug segment: what GitHub, Bitbucket and CircleCI allow in org and repository names (and
# uuids), never `.` or `..`, which would walk up the API path, nor `?`, `#` or `%`.
_SEGMENT = r"(?!\.+(?:/|$))[A-Za-z0-9_.-]+"
_VCS = r"(gh|bb|github|bitbucket|circleci)"
_PROJECT_SLUG = re.compile(rf"^{_VCS}/{_SEGMENT}/{_SEGMENT}$")
_ORG_SLUG = re.compile(rf"^{_VCS}/{_SEGMENT}$")
_LONG_VCS = {"github": "gh", "bitbucket": "bb"}

# Polling faster than this against circleci.com burns the unpublished per-user rate limit
# for little gain; CircleCI asks clients to avoid "frequent polling" (api-developers-guide).
_GENTLE_INTERVAL = {"interval": 10.0, "insights_interval": 300.0}


class ConfigError(Exception):
    """A configuration problem, one line per finding."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _short_vcs(slug: str) -> str:
    head, _, rest = slug.partition("/")
    return f"{_LONG_VCS.get(head, head)}/{rest}"


class _Section(BaseModel):
    # NaN and infinities are never meaningful settings (`interval: .nan` made polling a tight
    # loop), so every number must be finite, and most have a documented range besides.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


_DAY = 86400.0
_YEAR = 365 * _DAY
_CENTURY = 100 * _YEAR
# Paths the web server serves itself; the metrics path may not hide one of them.
RESERVED_PATHS = ("/", "/healthz", "/readyz", "/webhooks/circleci")


def _clean_token(value: str, key: str) -> str:
    """Surrounding whitespace (a Secret's trailing newline) goes; inner whitespace or non-ASCII
    cannot be sent in a header, so it is refused, without echoing the token."""
    token = value.strip()
    if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        raise ValueError(
            f"{key}: the token holds whitespace, control or non-ASCII characters; "
            "check how it was copied"
        )
    return token


_BRANCHES_HELP = '"default" (the project\'s default branch) and glob patterns.'
_OTHER_BRANCHES_HELP = 'Branches outside `branches`: dropped, or counted as branch="other".'
_TAGS_HELP = "Track tag pipelines too."


class BranchRules(_Section):
    """Which branches of a project are tracked; unset rules fall back to `defaults`."""

    branches: list[str] | None = Field(default=None, min_length=1, description=_BRANCHES_HELP)
    other_branches: Literal["drop", "fold"] | None = Field(
        default=None, description=_OTHER_BRANCHES_HELP
    )
    tags: bool | None = Field(default=None, description=_TAGS_HELP)


class ProjectSettings(BranchRules):
    slug: str = Field(description="gh/org/repo, bb/org/repo or circleci/<org-id>/<project-id>.")

    @field_validator("slug")
    @classmethod
    def _valid_slug(cls, value: str) -> str:
        if not _PROJECT_SLUG.match(value):
            raise ValueError(
                f"{value!r} is not a project slug like gh/org/repo, bb/org/repo or "
                "circleci/<org-id>/<project-id>"
            )
        return _short_vcs(value)


class OrgSettings(BranchRules):
    slug: str = Field(description="gh/org, bb/org or circleci/<org-id>.")
    include: list[str] = Field(default=["*"], description="Globs on project slugs to track.")
    exclude: list[str] = Field(default=[], description="Globs on project slugs to skip.")

    @field_validator("slug")
    @classmethod
    def _valid_slug(cls, value: str) -> str:
        if not _ORG_SLUG.match(value):
            raise ValueError(f"{value!r} is not an org slug like gh/org or circleci/<org-id>")
        return _short_vcs(value)

    def admits(self, project_slug: str) -> bool:
        return any(fnmatch.fnmatchcase(project_slug, p) for p in self.include) and not any(
            fnmatch.fnmatchcase(project_slug, p) for p in self.exclude
        )


class EffectiveBranchRules(_Section):
    """Branch rules for every project that does not set its own."""

    # Complete rules, nothing unset: the `defaults:` section, and the rules a project or org
    # ends up with (`Settings.branch_rules`), which is what the collectors are given.

    branches: list[str] = Field(default=["default"], min_length=1, description=_BRANCHES_HELP)
    other_branches: Literal["drop", "fold"] = Field(
        default="drop", description=_OTHER_BRANCHES_HELP
    )
    tags: bool = Field(default=False, description=_TAGS_HELP)


class ApiSettings(_Section):
    """How the exporter talks to the CircleCI API."""

    url: str = Field(
        default="https://circleci.com/api",
        description="API root; v2 lives under /v2, v1.1 under /v1.1. Env CIRCLECI_API_URL.",
    )
    token: SecretStr | None = Field(default=None, description="Env CIRCLECI_TOKEN.", exclude=True)
    token_file: Path | None = Field(
        default=None, description="A file holding the token. Env CIRCLECI_TOKEN_FILE."
    )
    # CircleCI publishes no numbers; 10/s with bursts of 20 stays well inside what the
    # CircleCI server docs give as a per-user limit (150 req/s) and is plenty for polling.
    requests_per_second: float = Field(
        default=10.0, gt=0, le=10000, description="Global request rate."
    )
    burst: int = Field(default=20, ge=1, le=10000, description="Requests allowed back to back.")
    max_concurrency: int = Field(
        default=16, ge=1, le=1024, description="Requests in flight at once, all projects."
    )
    timeout: Duration = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Deadline of one request attempt: connect, headers and the whole body.",
    )
    max_retries: int = Field(default=5, ge=0, le=100, description="Retries of one request.")
    max_response_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        le=1024**3,
        description="Largest response body read; a larger one fails the request unread.",
    )
    max_pages: int = Field(
        default=100,
        ge=1,
        le=100000,
        description="Pages read per list request; past it the pages read so far are used.",
    )
    max_rate_limit_wait: Duration = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="Longest pause of every request after a 429, whatever Retry-After says.",
    )
    circuit_breaker_failures: int = Field(
        default=10,
        ge=1,
        le=10000,
        description="Connection failures in a row, all projects, that pause every request.",
    )
    circuit_breaker_max_pause: Duration = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="Longest such pause; it doubles from 1s while the failures go on.",
    )

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        parts = urlsplit(value)
        if parts.username is not None or parts.password is not None:
            # Never echoed: the user part may well be the token itself.
            raise ValueError(
                "credentials in the URL (user@host) are refused; set the token with "
                "CIRCLECI_TOKEN or CIRCLECI_TOKEN_FILE"
            )
        return value.rstrip("/")

    @field_validator("token")
    @classmethod
    def _valid_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        return SecretStr(_clean_token(value.get_secret_value(), "api.token"))

    def resolved_token(self) -> SecretStr | None:
        """The token itself, read from `token_file` when no token is set directly."""
        if self.token is not None:
            return self.token
        if self.token_file is None:
            return None
        try:
            text = self.token_file.read_text().strip()
        except OSError as err:
            raise ConfigError(
                [f"api.token_file: cannot read {str(self.token_file)!r}: {err.strerror}"]
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(
                [f"api.token_file: {str(self.token_file)!r} is not UTF-8 text"]
            ) from None
        if not text:
            raise ConfigError([f"api.token_file: {str(self.token_file)!r} is empty"])
        try:
            return SecretStr(_clean_token(text, "api.token_file"))
        except ValueError as err:
            raise ConfigError([str(err)]) from None


# Old names still accepted (with a warning), new name: `project_refresh_interval` read like
# `project_refresh`, whose job is another one.
_RENAMED_COLLECT_KEYS = {"project_refresh_interval": "project_details_interval"}


class CollectSettings(_Section):
    """What is polled, and how often."""

    interval: Duration = Field(default=30.0, le=_DAY, description="Live polling interval.")
    insights_interval: Duration = Field(
        default=900.0, le=_DAY, description="Insights polling interval."
    )
    schedules_interval: Duration = Field(
        default=900.0,
        le=_DAY,
        description="How often each project's schedules are read (one request).",
    )
    schedule_grace: Duration = Field(
        default=900.0,
        le=_DAY,
        description="How late after its expected hour (slot) a scheduled run may start "
        "before it counts as missed.",
    )
    insights_window: InsightsWindow = Field(
        default="last-30-days", description="Insights reporting window."
    )
    lookback: Duration = Field(
        default=86400.0,
        le=_CENTURY,
        description="History read at start-up to set the last_* gauges.",
    )
    series_ttl: Duration = Field(
        default=7 * 86400.0, le=_CENTURY, description="Series not seen for this long are removed."
    )
    discovery_interval: Duration = Field(
        default=600.0, le=_DAY, description="How often `orgs:` are searched for projects."
    )
    project_details_interval: Duration = Field(
        default=6 * 3600.0,
        le=_YEAR,
        description="How often each project's details (name, default branch) are re-read: one "
        "request. Formerly `project_refresh_interval`, still accepted with a deprecation "
        "warning; not to be confused with `project_refresh`.",
    )
    org_feed: bool = Field(
        default=True,
        description="Read each org's pipeline feed (`GET /pipeline?org-slug=`, one request per "
        "org per `interval`) to learn which projects have new pipelines; a quiet project then "
        "costs no request between `project_refresh` reads. Risk: a rerun of an old pipeline "
        "(no new pipeline) shows only at the next `project_refresh`, unless webhooks report it. "
        "Off: every project's pipeline list is read every `interval`.",
    )
    project_refresh: Duration = Field(
        default=600.0,
        gt=0,
        le=_DAY,
        description="With `org_feed`, the longest time between two direct reads of a project's "
        "pipeline list (one request each): they catch what the feed cannot show (reruns, "
        "unfollowed projects). Shorter: reruns show sooner, at one request per project per "
        "period (500 projects every 10m is under one request a second).",
    )
    org_feed_max_pages: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Pages (20 pipelines each) of an org feed read at most per cycle. Past it "
        "(a burst of new pipelines), every tracked project of the org has its list read "
        "directly once, so nothing is missed; counted in "
        "circleci_exporter_org_feed_overflows_total.",
    )
    interval_with_webhooks: Duration = Field(
        default=300.0, le=_DAY, description="Live polling interval while webhooks arrive."
    )
    tests: bool = Field(default=True, description="Fetch test results of completed jobs.")
    job_details: bool = Field(default=True, description="Fetch job details (queue time).")
    failed_steps: bool = Field(
        default=True,
        description="Read the failing step of each failed job on a tracked branch (API v1.1).",
    )
    max_pipeline_pages: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Pages (20 pipelines each) of a project's pipeline list read at most per "
        "cycle. Unset: enough for 100 pipelines an hour over `lookback`, at least 10.",
    )
    max_series_per_project: int = Field(
        default=2000,
        ge=1,
        le=1_000_000,
        description="Workflow and job names (per branch) one project may add; past it its new "
        "ones are dropped, counted and logged. Each name is a dozen or so series.",
    )
    max_concurrency_per_project: int = Field(
        default=4,
        ge=1,
        le=1024,
        description="Requests of one project in flight at once, within api.max_concurrency, "
        "so that one slow project cannot hold every slot.",
    )

    rate_limit_split: bool = Field(
        default=False,
        description="Divide api.requests_per_second and api.burst by sharding.total_shards, "
        "for shards that share one token (and so one rate limit). Off: each shard uses all "
        "of it, e.g. with a token of its own.",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for old, new in _RENAMED_COLLECT_KEYS.items():
            if old not in data:
                continue
            # Sources merge over the defaults (nested_model_default_partial_update), so the new
            # key is always present: only a value of its own conflicts.
            if new in data and parse_duration(data[new]) != cls.model_fields[new].default:
                raise ValueError(f"{old} is the old name of {new}: set only {new}")
            logger.warning(
                "deprecated setting; use its new name",
                extra={"key": f"collect.{old}", "new_key": f"collect.{new}"},
            )
            data = {**data, new: data[old]}
            del data[old]
        return data

    def pipeline_pages(self) -> int:
        """`max_pipeline_pages`, or its default derived from `lookback`."""
        if self.max_pipeline_pages is not None:
            return self.max_pipeline_pages
        # A busy monorepo builds ~100 pipelines an hour; 20 pipelines to a page.
        return max(10, math.ceil(self.lookback / 3600 * 100 / 20))


class ShardingSettings(_Section):
    """Several replicas, each tracking only the projects whose slug hashes to its shard (kube-state-metrics' --shard and --total-shards; see docs/architecture.md, Sharding). Shards sharing one token share its rate limit: set `collect.rate_limit_split`, or give each shard its own token."""  # noqa: E501

    shard: int | None = Field(
        default=None, ge=0, description="This replica's shard, 0 to total_shards - 1 (--shard)."
    )
    total_shards: int = Field(
        default=1, ge=1, le=1000, description="How many shards there are (--total-shards)."
    )
    from_pod_name: bool = Field(
        default=False,
        description="Take the shard from the ordinal suffix of this StatefulSet pod's name: "
        "env POD_NAME, else HOSTNAME (--shard.from-pod-name).",
    )

    @model_validator(mode="after")
    def _one_shard(self) -> ShardingSettings:
        if self.shard is not None and self.from_pod_name:
            raise ValueError("set shard or from_pod_name, not both")
        if self.shard is not None and self.shard >= self.total_shards:
            raise ValueError(f"shard {self.shard} must be below total_shards ({self.total_shards})")
        return self

    def resolved(self, environ: dict[str, str] | None = None) -> Shard:
        """This replica's shard; with `from_pod_name`, read from `environ` (default: the
        process environment). ConfigError, one line, when the pod name has no usable ordinal."""
        if not self.from_pod_name:
            if self.shard is None and self.total_shards > 1:
                # Checked here, not when loading: `webhooks sync` needs only total_shards.
                raise ConfigError(
                    [f"sharding.total_shards is {self.total_shards}: say which shard this is "
                     "with sharding.shard (--shard) or sharding.from_pod_name "
                     "(--shard.from-pod-name)"]
                )  # fmt: skip
            return Shard(self.shard or 0, self.total_shards)
        env = os.environ if environ is None else environ
        source = next((name for name in ("POD_NAME", "HOSTNAME") if env.get(name)), None)
        if source is None:
            raise ConfigError(
                ["sharding.from_pod_name: neither POD_NAME nor HOSTNAME is set; set POD_NAME "
                 "from the downward API (metadata.name)"]
            )  # fmt: skip
        try:
            ordinal = ordinal_of_pod_name(env[source])
        except ValueError as err:
            raise ConfigError([f"sharding.from_pod_name: {source}: {err}"]) from None
        if ordinal >= self.total_shards:
            raise ConfigError(
                [f"sharding.from_pod_name: {source}: pod ordinal {ordinal} is not below "
                 f"total_shards ({self.total_shards}); scale the StatefulSet to total_shards "
                 "replicas"]
            )  # fmt: skip
        return Shard(ordinal, self.total_shards)


class InsightsSettings(_Section):
    """The Insights metrics (success rates, flaky tests, slowest tests)."""

    enabled: bool = Field(default=True, description="Poll the Insights endpoints.")
    top_tests: int = Field(
        default=20, ge=0, le=10000, description="Test series per workflow, highest first."
    )
    top_flaky_tests: int = Field(default=50, ge=0, le=10000, description="Flaky tests per project.")


class MetricsSettings(_Section):
    """Histogram buckets, in seconds."""

    workflow_duration_buckets: list[float] = Field(
        default=[10, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800],
        description="Buckets of circleci_workflow_duration_seconds.",
    )
    job_duration_buckets: list[float] = Field(
        default=[10, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800],
        description="Buckets of circleci_job_duration_seconds.",
    )
    queue_buckets: list[float] = Field(
        default=[1, 5, 10, 30, 60, 120, 300, 600, 1800],
        description="Buckets of circleci_job_queued_seconds.",
    )

    @field_validator("workflow_duration_buckets", "job_duration_buckets", "queue_buckets")
    @classmethod
    def _increasing(cls, value: list[float]) -> list[float]:
        if not value or any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError("buckets must be a non-empty, strictly increasing list")
        if value[0] < 0:
            raise ValueError("buckets must not be negative")
        return value


class WebSettings(_Section):
    """The HTTP server that serves the metrics."""

    listen_address: str = Field(default=":10027", description="host:port of the web server.")
    telemetry_path: str = Field(default="/metrics", description="Path of the metrics.")
    logs: bool = Field(
        default=True,
        description="Serve failed steps' last log lines (on-call page, /failures/.../log).",
    )
    log_lines: int = Field(
        default=50, ge=1, le=1000, description="Log lines shown per failed step by default."
    )
    log_cache_entries: int = Field(
        default=64, ge=1, description="Step logs kept in memory (a finished log never changes)."
    )
    log_cache_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Bytes of step logs kept in memory."
    )
    config_file: Path | None = Field(
        default=None,
        description="Web config file (exporter-toolkit format: TLS, basic auth, headers) for "
        "both listeners; re-read when it changes. See docs/web-config.md.",
    )

    @field_validator("listen_address")
    @classmethod
    def _valid_address(cls, value: str) -> str:
        host_port(value)
        return value

    @field_validator("telemetry_path")
    @classmethod
    def _valid_path(cls, value: str) -> str:
        if not re.fullmatch(r"/[A-Za-z0-9_.~/-]*", value):
            raise ValueError(f"{value!r} must be a plain path starting with /")
        if value.rstrip("/") in {p.rstrip("/") for p in RESERVED_PATHS}:
            raise ValueError(f"{value!r} would hide {', '.join(RESERVED_PATHS)}: pick another")
        return value


class WebhookSettings(_Section):
    """The receiver of CircleCI webhooks (POST /webhooks/circleci); on when a secret is set."""

    secret: SecretStr | None = Field(
        default=None,
        description="Signing secrets, comma-separated while rotating. Env CIRCLECI_WEBHOOK_SECRET.",
        exclude=True,
    )
    secret_files: list[Path] = Field(
        default=[], description="Files each holding one signing secret (e.g. secret mounts)."
    )
    listen_address: str | None = Field(
        default=None,
        description="host:port of a separate server for the webhook endpoint only, so that "
        "/metrics can stay private.",
    )
    body_timeout: Duration = Field(
        default=10.0, le=300, description="Time to receive a request's whole body; else 408."
    )
    max_connections: int = Field(
        default=256,
        ge=1,
        le=65535,
        description="Webhook requests in flight at once; more are refused with 503.",
    )
    dedupe_max_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        le=1024**3,
        description="Memory for the event ids remembered to drop redeliveries.",
    )

    @field_validator("listen_address")
    @classmethod
    def _valid_address(cls, value: str | None) -> str | None:
        if value is not None:
            host_port(value)
        return value

    def resolved_secrets(self) -> list[SecretStr]:
        """Every accepted secret: those of `secret`, then one per file."""
        found = []
        if self.secret is not None:
            found += [s.strip() for s in self.secret.get_secret_value().split(",")]
        for path in self.secret_files:
            try:
                found.append(path.read_text().strip())
            except OSError as err:
                raise ConfigError(
                    [f"webhooks.secret_files: cannot read {str(path)!r}: {err.strerror}"]
                ) from None
            except UnicodeDecodeError:
                raise ConfigError(
                    [f"webhooks.secret_files: {str(path)!r} is not UTF-8 text"]
                ) from None
        return [SecretStr(s) for s in found if s]


class LogSettings(_Section):
    """Structured logs on stderr."""

    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest level logged; `warn` (Prometheus's spelling) too."
    )
    format: Literal["logfmt", "json"] = Field(default="logfmt", description="Line format.")

    @field_validator("level", "format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        value = value.lower()
        # Prometheus and its exporters spell it `warn`; Python's logging says `warning`.
        return "warning" if value == "warn" else value


def host_port(address: str) -> tuple[str, int]:
    """Split `host:port`; the host is "" for `:10027`, which means every interface (IPv6 and
    IPv4, see exporter.web.listen)."""
    host, sep, port = address.rpartition(":")
    # isdigit() alone admits other scripts' digits (`:١٢٣٤`), which int() then accepts.
    if not sep or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise ValueError(f"{address!r} is not host:port, e.g. :10027 or 127.0.0.1:10027")
    return host.strip("[]"), int(port)


def read_yaml(path: Path, prefix: str = "") -> Any:
    """The YAML document in `path`; a missing file or a syntax error is a ConfigError of one
    line, `prefix` before it."""
    try:
        return yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError([f"{prefix}{path}: cannot read: {err.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{prefix}{path}: not UTF-8 text"]) from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise ConfigError([f"{prefix}{path}:{line}: {problem}"]) from None


class _ConfigFileSource(PydanticBaseSettingsSource):
    """The YAML file; missing files and YAML syntax errors become one-line config errors."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ returns the whole mapping at once

    def __call__(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        data = read_yaml(self.path)
        if data is None:
            return {}
        # Non-string keys would reach Settings(**data) and fail with a bare TypeError.
        if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
            raise ConfigError([f"{self.path}: the top level must be a mapping of sections"])
        return data


class _CircleCIEnvSource(PydanticBaseSettingsSource):
    """The conventional CircleCI variable names, which do not follow our nested prefix."""

    _NAMES: ClassVar[dict[str, str]] = {
        "CIRCLECI_TOKEN": "token",
        "CIRCLECI_TOKEN_FILE": "token_file",
        "CIRCLECI_API_URL": "url",
    }

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ returns the whole mapping at once

    def __call__(self) -> dict[str, Any]:
        api = {key: os.environ[env] for env, key in self._NAMES.items() if os.environ.get(env)}
        found: dict[str, Any] = {"api": api} if api else {}
        if os.environ.get("CIRCLECI_WEBHOOK_SECRET"):
            found["webhooks"] = {"secret": os.environ["CIRCLECI_WEBHOOK_SECRET"]}
        return found


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        env_prefix="CIRCLECI_EXPORTER_",
        env_nested_delimiter="__",
        nested_model_default_partial_update=True,
    )
    # The YAML file the sources read: none here; `load_settings` binds its file to a subclass.
    yaml_file: ClassVar[Path | None] = None

    projects: list[ProjectSettings] = Field(default=[], description="Projects to track.")
    orgs: list[OrgSettings] = Field(default=[], description="Orgs whose projects are discovered.")
    defaults: EffectiveBranchRules = EffectiveBranchRules()
    collect: CollectSettings = CollectSettings()
    sharding: ShardingSettings = ShardingSettings()
    insights: InsightsSettings = InsightsSettings()
    metrics: MetricsSettings = MetricsSettings()
    api: ApiSettings = ApiSettings()
    web: WebSettings = WebSettings()
    log: LogSettings = LogSettings()
    webhooks: WebhookSettings = WebhookSettings()

    @model_validator(mode="after")
    def _unique_projects(self) -> Settings:
        # CircleCI compares slugs case-insensitively: gh/a/b and gh/A/B are one project.
        seen: set[str] = set()
        for project in self.projects:
            if project.slug.lower() in seen:
                raise ValueError(f"projects: {project.slug} is listed twice")
            seen.add(project.slug.lower())
        return self

    @model_validator(mode="after")
    def _project_share_within_the_cap(self) -> Settings:
        if self.collect.max_concurrency_per_project > self.api.max_concurrency:
            raise ValueError(
                "collect.max_concurrency_per_project: must not exceed api.max_concurrency "
                f"({self.api.max_concurrency})"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # First wins: flags (init) > env > YAML > defaults.
        return (
            init_settings,
            _CircleCIEnvSource(settings_cls),
            env_settings,
            _ConfigFileSource(settings_cls, cls.yaml_file),
        )

    def branch_rules(self, rules: BranchRules) -> EffectiveBranchRules:
        """The effective branch rules of a project or org, falling back to `defaults`."""
        return EffectiveBranchRules(
            branches=rules.branches if rules.branches is not None else self.defaults.branches,
            other_branches=rules.other_branches or self.defaults.other_branches,
            tags=rules.tags if rules.tags is not None else self.defaults.tags,
        )

    def effective_yaml(self) -> str:
        """The effective configuration as YAML, with the token masked."""
        data = self.model_dump(mode="json")
        data["api"]["token"] = "<secret>" if self.api.token is not None else None
        data["webhooks"]["secret"] = "<secret>" if self.webhooks.secret is not None else None
        for section, model in (("collect", CollectSettings), ("api", ApiSettings)):
            for name in duration_fields(model):
                data[section][name] = format_duration(data[section][name])
        return yaml.safe_dump(data, sort_keys=False)


def duration_fields(model: type[BaseModel]) -> list[str]:
    return [
        name
        for name, field in model.model_fields.items()
        if any(getattr(m, "func", None) is parse_duration for m in field.metadata)
    ]


@functools.lru_cache(maxsize=16)
def _reading(config_file: Path | None) -> type[Settings]:
    """`Settings` whose YAML source reads `config_file`: pydantic-settings builds its sources
    inside the constructor, from the class, so the path travels on a class of its own."""
    return type("Settings", (Settings,), {"yaml_file": config_file, "__module__": __name__})


def load_settings(config_file: Path | None, overrides: dict[str, Any] | None = None) -> Settings:
    """Build the settings from every source; raise ConfigError naming each bad key path."""
    try:
        loaded = _reading(config_file)(**(overrides or {}))
    except ValidationError as err:
        raise ConfigError([_describe(e) for e in err.errors()]) from None
    except SettingsError as err:
        # pydantic-settings raises this when a list or section in the environment is not JSON.
        raise ConfigError([f"environment: {err}; lists and sections must be JSON"]) from None
    # A plain `Settings` again (already validated), like any other.
    return Settings.model_construct(loaded.model_fields_set, **dict(loaded))


def _describe(error: Any) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
    path = path.removeprefix(".")
    if error["type"] == "extra_forbidden":
        known = _known_keys(error["loc"][:-1])
        guess = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        return f"{path}: unknown key{hint}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "required"
    # Whole-model checks (duplicate projects) have no location; their message names the key.
    return f"{path}: {message}" if path else message


def _known_keys(parent: tuple[Any, ...]) -> list[str]:
    model: Any = Settings
    for part in parent:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation
        model = getattr(annotation, "__args__", (annotation,))[0]
    return list(model.model_fields) if hasattr(model, "model_fields") else []


def warn_about_abusive_intervals(settings: Settings) -> None:
    """Log a warning for each interval that would poll circleci.com too often."""
    if not settings.api.url.startswith("https://circleci.com"):
        return
    for name, gentle in _GENTLE_INTERVAL.items():
        value = getattr(settings.collect, name)
        if value < gentle:
            logger.warning(
                "polling interval is aggressive for circleci.com and may be rate limited",
                extra={"key": f"collect.{name}", "value": format_duration(value),
                       "suggested_minimum": format_duration(gentle)},
            )  # fmt: skip
