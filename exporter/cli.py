"""The `circleci-exporter` command."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import SecretStr

from exporter import __version__
from exporter.logs import configure_logging
from exporter.settings import (
    ConfigError,
    Settings,
    load_settings,
    warn_about_abusive_intervals,
)
from exporter.sharding import check_url_template
from exporter.web.listen import listen
from exporter.web.webconfig import load_web_config

if TYPE_CHECKING:
    from exporter.simulator import SimConfig

logger = logging.getLogger(__name__)

# Flags in the Prometheus exporter style, and the settings key each one sets.
_FLAGS = {
    "web.listen-address": ("web", "listen_address", "host:port of the web server (:10027)"),
    "web.telemetry-path": ("web", "telemetry_path", "path of the metrics (/metrics)"),
    "web.config.file": (
        "web",
        "config_file",
        "TLS, basic auth and headers of both listeners (exporter-toolkit format)",
    ),
    "webhook.listen-address": (
        "webhooks",
        "listen_address",
        "host:port of a separate server for the webhook endpoint only (default: none)",
    ),
    "shard": ("sharding", "shard", "this replica's shard, 0 to --total-shards - 1 (0)"),
    "total-shards": ("sharding", "total_shards", "how many shards there are (1)"),
    "log.level": ("log", "level", "debug, info, warn (or warning) or error (info)"),
    "log.format": ("log", "format", "logfmt or json (logfmt)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="circleci-exporter",
        description="Prometheus exporter for CircleCI: pipelines, workflows, jobs, tests "
        "and Insights, served on /metrics.",
        epilog="Environment: CIRCLECI_TOKEN or CIRCLECI_TOKEN_FILE, CIRCLECI_API_URL, "
        "CIRCLECI_EXPORTER_CONFIG, and any setting as CIRCLECI_EXPORTER_<SECTION>__<KEY>.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="YAML config (env CIRCLECI_EXPORTER_CONFIG)"
    )
    for flag, (_, _, text) in _FLAGS.items():
        parser.add_argument(f"--{flag}", dest=flag, metavar="VALUE", help=text)
    parser.add_argument(
        "--shard.from-pod-name",
        dest="shard.from-pod-name",
        action="store_true",
        default=None,
        help="take --shard from the ordinal suffix of this StatefulSet pod's name (env "
        "POD_NAME, else HOSTNAME)",
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the config, print it with the token masked, and exit",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="watch a simulated CircleCI organisation (no token, no network)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    simulate = commands.add_parser("simulate", help="serve the simulated CircleCI API on its own")
    simulate.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT")
    simulate.add_argument("--projects", type=int, default=20, metavar="N")
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument(
        "--speed", type=float, default=1.0, help="time compression (60: an hour in a minute)"
    )
    simulate.add_argument(
        "--token", help="the token clients must send (default: a fresh one, printed at start)"
    )
    simulate.add_argument(
        "--unfollowed",
        type=int,
        default=0,
        metavar="N",
        help="the token's user does not follow the last N projects: the org feed leaves them out",
    )
    webhooks = commands.add_parser("webhooks", help="manage the CircleCI webhooks")
    webhook_commands = webhooks.add_subparsers(
        dest="webhooks_command", metavar="COMMAND", required=True
    )
    sync = webhook_commands.add_parser(
        "sync",
        help="create or update the webhooks of the tracked projects",
        description="Create or update the CircleCI webhook of every tracked project so that it "
        "delivers workflow-completed and job-completed events, signed, to URL, or with "
        "sharding to its owning shard's URL from TEMPLATE (every shard's projects at once).",
    )
    target = sync.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="the public https URL of the endpoint")
    target.add_argument(
        "--url-template",
        metavar="TEMPLATE",
        help="with sharding: the endpoint of each project's owning shard, {shard} replaced by "
        "its number, e.g. https://metrics.example.com/shard-{shard}/webhooks/circleci",
    )
    sync.add_argument(
        "--secret-file",
        type=Path,
        metavar="FILE",
        help="the signing secret (default: the first of CIRCLECI_WEBHOOK_SECRET or "
        "webhooks.secret_files)",
    )
    # SUPPRESS: an absent sub-command --config must not hide the top-level one.
    sync.add_argument(
        "--config", type=Path, metavar="FILE", default=argparse.SUPPRESS, help="YAML config"
    )
    sync.add_argument(
        "--total-shards",
        dest="total-shards",
        metavar="M",
        default=argparse.SUPPRESS,
        help="how many shards there are, for --url-template (default: sharding.total_shards)",
    )
    sync.add_argument(
        "--dry-run", action="store_true", help="show what would change, change nothing"
    )
    _add_backfill(commands)
    return parser


def _add_backfill(commands: Any) -> None:
    backfill = commands.add_parser(
        "backfill",
        help="write up to 90 days of Insights history as OpenMetrics for promtool",
        description="Rebuild the live workflow and job families from the Insights run lists "
        "of the tracked projects, branches and workflows, and write them with timestamps as "
        "an OpenMetrics file for `promtool tsdb create-blocks-from openmetrics`. "
        "See docs/backfill.md.",
    )
    backfill.add_argument(
        "--config", type=Path, metavar="FILE", default=argparse.SUPPRESS, help="YAML config"
    )
    backfill.add_argument(
        "--since", required=True, metavar="DURATION", help="how far back, e.g. 30d (at most 90d)"
    )
    backfill.add_argument("--out", type=Path, required=True, metavar="FILE.om")
    backfill.add_argument(
        "--step", default="5m", metavar="DURATION", help="time between samples (5m)"
    )
    end = backfill.add_mutually_exclusive_group()
    end.add_argument(
        "--exporter-url",
        metavar="URL",
        help="end where this live exporter began watching (its /metrics URL)",
    )
    end.add_argument(
        "--until", metavar="TIME", help="end here: now (default), Unix seconds or RFC 3339"
    )
    backfill.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="add a label to every series, e.g. job=circleci and instance=exporter:10027 "
        "(the labels Prometheus gives the live scrape)",
    )
    backfill.add_argument(
        "--dry-run", action="store_true", help="print what would be read and the request count"
    )
    backfill.add_argument(
        "--checkpoint", type=Path, metavar="FILE", help="resume file (default: FILE.om.checkpoint)"
    )
    backfill.add_argument(
        "--promtool-dir",
        type=Path,
        metavar="DIR",
        help="then run promtool tsdb create-blocks-from openmetrics into DIR",
    )
    backfill.add_argument("--promtool", default="promtool", metavar="PATH", help="(promtool)")
    backfill.add_argument(
        "--split-blocks",
        action="store_true",
        help="also cut FILE.om into one file per promtool block window, in FILE.om.windows/ "
        "(promtool reads each file once; run it on each)",
    )


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, dict[str, Any]] = {}
    for flag, (section, key, _) in _FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    if getattr(args, "shard.from-pod-name", None):
        overrides.setdefault("sharding", {})["from_pod_name"] = True
    return overrides


def _fail(problems: list[str]) -> int:
    for problem in problems:
        print(f"circleci-exporter: {problem}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "simulate":
        return _simulate(args)
    if args.command == "webhooks":
        return _webhooks_sync(args)
    if args.command == "backfill":
        return _backfill(args)
    config_file = args.config or _path_from_env("CIRCLECI_EXPORTER_CONFIG")
    try:
        settings = load_settings(config_file, _overrides(args))
        settings.sharding.resolved()
        problems = [] if args.demo else _startup_problems(settings)
    except ConfigError as err:
        return _fail(err.problems)
    if settings.web.config_file is not None:
        try:
            load_web_config(settings.web.config_file)
        except ConfigError as err:
            problems += err.problems
    if problems:
        return _fail(problems)
    # Logging is configured before the interval check so its warning comes out in the
    # configured format, also under --check-config (stderr; the YAML goes to stdout).
    configure_logging(settings.log.level, settings.log.format)
    warn_about_abusive_intervals(settings)
    if args.check_config:
        print(settings.effective_yaml(), end="")
        return 0
    try:
        sock = listen(settings.web.listen_address)
        webhook_address = settings.webhooks.listen_address
        webhook_sock = (
            listen(webhook_address, "webhooks.listen_address") if webhook_address else None
        )
    except ConfigError as err:
        return _fail(err.problems)
    with contextlib.suppress(KeyboardInterrupt):
        if args.demo:
            from exporter.demo import run_demo

            anyio.run(run_demo, settings, sock, webhook_sock)
        else:
            from exporter.service import run_exporter

            anyio.run(functools.partial(run_exporter, webhook_sock=webhook_sock), settings, sock)
    return 0


def _path_from_env(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _startup_problems(settings: Settings) -> list[str]:
    problems = []
    if settings.api.resolved_token() is None:
        problems.append(
            "api.token: no CircleCI token: set CIRCLECI_TOKEN or CIRCLECI_TOKEN_FILE "
            "(or try --demo)"
        )
    if not settings.projects and not settings.orgs:
        problems.append("projects: nothing to watch: list projects: or orgs: in the config")
    if settings.webhooks.listen_address and not settings.webhooks.resolved_secrets():
        problems.append(
            "webhooks.listen_address: webhooks need a signing secret: set "
            "CIRCLECI_WEBHOOK_SECRET or webhooks.secret_files"
        )
    return problems


def _webhooks_sync(args: argparse.Namespace) -> int:
    from exporter.webhook_sync import run_sync

    config_file = args.config or _path_from_env("CIRCLECI_EXPORTER_CONFIG")
    try:
        settings = load_settings(config_file, _overrides(args))
        secrets = (
            [_read_secret_file(args.secret_file)]
            if args.secret_file
            else settings.webhooks.resolved_secrets()
        )
        problems = _startup_problems(settings)
    except ConfigError as err:
        return _fail(err.problems)
    if not secrets:
        problems.append(
            "webhooks sync: no signing secret: pass --secret-file, or set "
            "CIRCLECI_WEBHOOK_SECRET or webhooks.secret_files"
        )
    problems += _webhook_target_problems(args.url, args.url_template, settings)
    if problems:
        return _fail(problems)
    configure_logging(settings.log.level, settings.log.format)
    # While rotating, the first secret is the new one: the one CircleCI should sign with.
    run = functools.partial(
        run_sync,
        url=args.url,
        url_template=args.url_template,
        secret=secrets[0],
        dry_run=args.dry_run,
    )
    results = anyio.run(run, settings)
    for result in results:
        print(result.line())
    return 1 if any(r.failed for r in results) else 0


def _webhook_target_problems(
    url: str | None, template: str | None, settings: Settings
) -> list[str]:
    if template is not None:
        try:
            check_url_template(template)
        except ValueError as err:
            return [f"webhooks sync: --url-template {err}"]
        return []
    assert url is not None  # argparse: exactly one of them
    if not url.startswith(("https://", "http://")):
        return [f"webhooks sync: --url {url!r} is not an http(s) URL"]
    if settings.sharding.total_shards > 1:
        return [
            f"webhooks sync: --url sends every project's events to one URL, but there are "
            f"{settings.sharding.total_shards} shards: use --url-template with {{shard}}"
        ]
    return []


def _backfill(args: argparse.Namespace) -> int:
    from exporter.backfill.command import BackfillError, Options, run_backfill
    from exporter.circleci import CircleCIError
    from exporter.durations import parse_duration

    config_file = args.config or _path_from_env("CIRCLECI_EXPORTER_CONFIG")
    try:
        settings = load_settings(config_file, _overrides(args))
        problems = _startup_problems(settings)
    except ConfigError as err:
        return _fail(err.problems)
    labels = {}
    for pair in args.label:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            problems.append(f"backfill: --label {pair!r} is not NAME=VALUE")
        labels[name] = value
    try:
        since, step = parse_duration(args.since), parse_duration(args.step)
    except ValueError as err:
        problems.append(f"backfill: --since/--step: {err}")
    if problems:
        return _fail(problems)
    configure_logging(settings.log.level, settings.log.format)
    options = Options(
        since=since,
        out=args.out,
        step=step,
        until=args.until,
        exporter_url=args.exporter_url,
        labels=labels,
        dry_run=args.dry_run,
        checkpoint=args.checkpoint,
        promtool_dir=args.promtool_dir,
        promtool=args.promtool,
        split=args.split_blocks,
    )
    try:
        anyio.run(run_backfill, settings, options)
    except BackfillError as err:
        return _fail([f"backfill: {err}"])
    except CircleCIError as err:
        return _fail([f"backfill: {err} (rerun the same command to resume)"])
    except KeyboardInterrupt:
        return _fail(["backfill: interrupted (rerun the same command to resume)"])
    return 0


def _read_secret_file(path: Path) -> SecretStr:
    try:
        text = path.read_text().strip()
    except OSError as err:
        raise ConfigError([f"--secret-file: cannot read {str(path)!r}: {err.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"--secret-file: {str(path)!r} is not UTF-8 text"]) from None
    if not text:
        raise ConfigError([f"--secret-file: {str(path)!r} is empty"])
    return SecretStr(text)


def _simulate(args: argparse.Namespace) -> int:
    from exporter.simulator import SimConfig, serve

    try:
        token = {"token": args.token} if args.token is not None else {}
        config = SimConfig(projects=args.projects, seed=args.seed, speed=args.speed, **token)
        if args.unfollowed:
            config = _unfollowing(config, args.unfollowed)
        sock = listen(args.listen, key="simulate --listen")
    except ValueError as err:
        return _fail([f"simulate: {err}"])
    except ConfigError as err:
        return _fail(err.problems)
    configure_logging("info", "logfmt")
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(serve, config, sock)
    return 0


def _unfollowing(config: SimConfig, count: int) -> SimConfig:
    """`config` whose token user follows every project but the last `count`."""
    from exporter.simulator import World

    if not 0 <= count <= config.projects:
        raise ValueError(f"--unfollowed must be between 0 and --projects, got {count}")
    slugs = [p.slug for p in World(config).projects]
    return dataclasses.replace(config, followed=tuple(slugs[: len(slugs) - count]))


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
