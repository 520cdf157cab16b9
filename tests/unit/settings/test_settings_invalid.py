"""Every bad config becomes one line per problem, naming its key path."""

from collections.abc import Callable
from pathlib import Path

import pytest

from exporter.settings import ConfigError, load_settings


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("colect:\n  interval: 1m\n", "colect: unknown key (did you mean 'collect'?)"),
        ("Web: {}\n", "Web: unknown key (did you mean 'web'?)"),
        (
            "collect:\n  intervall: 1m\n",
            "collect.intervall: unknown key (did you mean 'interval'?)",
        ),
        (
            "web:\n  listen_adress: ':1'\n",
            "web.listen_adress: unknown key (did you mean 'listen_address'?)",
        ),
        (
            "projects:\n  - slug: gh/acme/api\n    brnaches: [main]\n",
            "projects[0].brnaches: unknown key (did you mean 'branches'?)",
        ),
        (
            "projects:\n  - slug: gh/acme/api\n  - slug: gh/acme/web\n    tag: true\n",
            "projects[1].tag: unknown key (did you mean 'tags'?)",
        ),
        (
            "orgs:\n  - slug: gh/acme\n    exlude: ['*']\n",
            "orgs[0].exlude: unknown key (did you mean 'exclude'?)",
        ),
        ("api:\n  xyzzy: 1\n", "api.xyzzy: unknown key"),
    ],
)
def test_unknown_keys(write_config: Callable[[str], Path], text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(text))

    assert caught.value.problems == [problem]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "collect:\n  interval: soon\n",
            "collect.interval: expected a duration such as 30s, 5m or 1h, got 'soon'",
        ),
        ("collect:\n  interval: 0s\n", "collect.interval: must be a positive duration, got '0s'"),
        (
            "collect:\n  insights_window: last-year\n",
            "collect.insights_window: Input should be 'last-24-hours', 'last-7-days', "
            "'last-30-days', 'last-60-days' or 'last-90-days'",
        ),
        (
            "collect: 5\n",
            "collect: Input should be a valid dictionary or instance of CollectSettings",
        ),
        ("projects: gh/acme/api\n", "projects: Input should be a valid list"),
        ("projects:\n  - branches: [main]\n", "projects[0].slug: required"),
        (
            "projects:\n  - slug: acme/api\n",
            "projects[0].slug: 'acme/api' is not a project slug like gh/org/repo, bb/org/repo "
            "or circleci/<org-id>/<project-id>",
        ),
        (
            "orgs:\n  - slug: gh/acme/api\n",
            "orgs[0].slug: 'gh/acme/api' is not an org slug like gh/org or circleci/<org-id>",
        ),
        (
            "projects:\n  - slug: gh/acme/api\n    other_branches: keep\n",
            "projects[0].other_branches: Input should be 'drop' or 'fold'",
        ),
        (
            "web:\n  listen_address: localhost\n",
            "web.listen_address: 'localhost' is not host:port, e.g. :10027 or 127.0.0.1:10027",
        ),
        (
            "web:\n  telemetry_path: metrics\n",
            "web.telemetry_path: 'metrics' must be a plain path starting with /",
        ),
        (
            "log:\n  format: text\n",
            "log.format: Input should be 'logfmt' or 'json'",
        ),
        ("api:\n  url: circleci.com\n", "api.url: 'circleci.com' is not an http(s) URL"),
        ("api:\n  burst: 0\n", "api.burst: Input should be greater than or equal to 1"),
        (
            "metrics:\n  queue_buckets: [5, 1]\n",
            "metrics.queue_buckets: buckets must be a non-empty, strictly increasing list",
        ),
    ],
)
def test_bad_values(write_config: Callable[[str], Path], text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(text))

    assert caught.value.problems == [problem]


def test_every_problem_is_reported_at_once(write_config: Callable[[str], Path]) -> None:
    path = write_config("collect:\n  interval: soon\nweb:\n  telemetry_path: metrics\n")

    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    assert [p.split(":")[0] for p in caught.value.problems] == [
        "collect.interval",
        "web.telemetry_path",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- gh/acme/api\n", "the top level must be a mapping of sections"),
        ("just words\n", "the top level must be a mapping of sections"),
        ("1: 2\n", "the top level must be a mapping of sections"),
        ("collect: [\n", "line 2: expected the node content, but found '<stream end>'"),
        ("collect:\n\tinterval: 1m\n", "line 2: found character '\\t' that cannot start any token"),
    ],
)
def test_unusable_files(write_config: Callable[[str], Path], text: str, problem: str) -> None:
    path = write_config(text)

    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    assert caught.value.problems == [f"{path}: {problem}"]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    assert caught.value.problems == [f"{path}: cannot read: No such file or directory"]


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"\xff\xfe\x00collect")

    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    assert caught.value.problems == [f"{path}: not UTF-8 text"]


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        (
            "CIRCLECI_EXPORTER_COLLECT__INTERVL",
            "1m",
            "collect.intervl: unknown key (did you mean 'interval'?)",
        ),
        (
            "CIRCLECI_EXPORTER_PROJECTS",
            '[{"slug": "gh/acme/api", "brnaches": []}]',
            "projects[0].brnaches: unknown key (did you mean 'branches'?)",
        ),
        (
            "CIRCLECI_EXPORTER_PROJECTS",
            "gh/acme/api",
            'environment: error parsing value for field "projects" from source '
            '"EnvSettingsSource"; lists and sections must be JSON',
        ),
        (
            "CIRCLECI_API_URL",
            "ftp://example.com",
            "api.url: 'ftp://example.com' is not an http(s) URL",
        ),
    ],
)
def test_bad_environment(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ConfigError) as caught:
        load_settings(None)

    assert caught.value.problems == [problem]


def test_bad_flag_value_names_its_key() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {"log": {"level": "loud"}})

    assert caught.value.problems == [
        "log.level: Input should be 'debug', 'info', 'warning' or 'error'"
    ]
