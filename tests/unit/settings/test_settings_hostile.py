"""Hostile settings: every number finite and in range, slugs that cannot walk the API path, a
token as a Kubernetes Secret hands it over, paths and ports that cannot confuse the server
(issue 12, items 2, 8 and 9)."""

from collections.abc import Callable
from pathlib import Path

import pytest

from exporter.settings import ConfigError, load_settings

TOKEN = "CCIPAT_s3cr3tT0kenValue_0123456789abcdef"


def _problems(write_config: Callable[[str], Path], text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(text))
    return caught.value.problems


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "1e999", "'nan'", "'inf'"])
@pytest.mark.parametrize(
    "key",
    ["collect:\n  interval", "api:\n  timeout", "api:\n  requests_per_second",
     "collect:\n  lookback", "api:\n  max_rate_limit_wait"],
)  # fmt: skip
def test_non_finite_numbers_are_refused(
    write_config: Callable[[str], Path], key: str, value: str
) -> None:
    problems = _problems(write_config, f"{key}: {value}\n")
    assert len(problems) == 1
    assert problems[0].startswith(key.replace(":\n  ", "."))


@pytest.mark.parametrize("bucket", [".nan", ".inf"])
def test_non_finite_buckets_are_refused(write_config: Callable[[str], Path], bucket: str) -> None:
    problems = _problems(write_config, f"metrics:\n  queue_buckets: [1, 5, {bucket}]\n")
    assert len(problems) == 1 and problems[0].startswith("metrics.queue_buckets")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("collect:\n  interval: 400d\n", "collect.interval"),
        ("api:\n  requests_per_second: 1e9\n", "api.requests_per_second"),
        ("api:\n  max_concurrency: 100000\n", "api.max_concurrency"),
        ("api:\n  max_pages: 0\n", "api.max_pages"),
        ("api:\n  max_response_bytes: 10\n", "api.max_response_bytes"),
        ("collect:\n  max_concurrency_per_project: 32\n", "collect.max_concurrency_per_project"),
    ],
)
def test_numbers_outside_their_documented_range_are_refused(
    write_config: Callable[[str], Path], text: str, key: str
) -> None:
    problems = _problems(write_config, text)
    assert len(problems) == 1 and problems[0].startswith(key)


@pytest.mark.parametrize("slug", ["gh/../b", "gh/a/b?x", "gh/a/..", "gh/a/b#c", "gh/a%2F/b"])
def test_slugs_that_would_walk_or_query_the_api_path_are_refused(
    write_config: Callable[[str], Path], slug: str
) -> None:
    problems = _problems(write_config, f"projects:\n  - slug: '{slug}'\n")
    assert problems == [
        f"projects[0].slug: {slug!r} is not a project slug like gh/org/repo, bb/org/repo or "
        "circleci/<org-id>/<project-id>"
    ]


def test_slugs_differing_only_in_case_are_one_project(
    write_config: Callable[[str], Path],
) -> None:
    problems = _problems(write_config, "projects:\n  - slug: gh/a/b\n  - slug: gh/A/B\n")
    assert problems == ["projects: gh/A/B is listed twice"]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("defaults:\n  branches: []\n", "defaults.branches"),
        ("projects:\n  - slug: gh/a/b\n    branches: []\n", "projects[0].branches"),
        ("orgs:\n  - slug: gh/a\n    branches: []\n", "orgs[0].branches"),
    ],
)
def test_an_empty_branch_list_is_an_error(
    write_config: Callable[[str], Path], text: str, key: str
) -> None:
    problems = _problems(write_config, text)
    assert len(problems) == 1 and problems[0].startswith(key)


@pytest.mark.parametrize("path", ["/", "/healthz", "/readyz", "/readyz/", "/webhooks/circleci"])
def test_the_metrics_path_cannot_shadow_the_other_pages(
    write_config: Callable[[str], Path], path: str
) -> None:
    problems = _problems(write_config, f"web:\n  telemetry_path: '{path}'\n")
    assert len(problems) == 1 and problems[0].startswith("web.telemetry_path")


# Arabic-Indic and fullwidth digits, which str.isdigit() and int() accept.
@pytest.mark.parametrize(
    "address", [":\u0661\u0662\u0663\u0664", "127.0.0.1:\uff11\uff12\uff13\uff14"]
)
def test_a_port_in_other_digits_is_refused(
    write_config: Callable[[str], Path], address: str
) -> None:
    problems = _problems(write_config, f"web:\n  listen_address: '{address}'\n")
    assert len(problems) == 1 and problems[0].startswith("web.listen_address")


@pytest.mark.parametrize("padded", [f"{TOKEN}\n", f"  {TOKEN}\r\n", f"\t{TOKEN} "])
def test_surrounding_whitespace_is_stripped_from_the_token(
    monkeypatch: pytest.MonkeyPatch, padded: str
) -> None:
    monkeypatch.setenv("CIRCLECI_TOKEN", padded)
    token = load_settings(None).api.resolved_token()
    assert token is not None and token.get_secret_value() == TOKEN


@pytest.mark.parametrize(
    "bad", [f"{TOKEN[:10]} {TOKEN[10:]}", f"{TOKEN}é", f"{TOKEN[:5]}\n{TOKEN}"]
)
@pytest.mark.parametrize("source", ["env", "file"])
def test_a_token_with_inner_whitespace_or_non_ascii_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bad: str, source: str
) -> None:
    if source == "env":
        monkeypatch.setenv("CIRCLECI_TOKEN", bad)
    else:
        (tmp_path / "token").write_text(bad)
        monkeypatch.setenv("CIRCLECI_TOKEN_FILE", str(tmp_path / "token"))
    with pytest.raises(ConfigError) as caught:
        load_settings(None).api.resolved_token()
    assert len(caught.value.problems) == 1
    assert "whitespace, control or non-ASCII" in caught.value.problems[0]
    assert TOKEN[:10] not in str(caught.value)


def test_credentials_in_the_api_url_are_refused_without_echoing_them(
    write_config: Callable[[str], Path],
) -> None:
    problems = _problems(write_config, f"api:\n  url: https://{TOKEN}@circleci.com/api\n")
    assert len(problems) == 1 and problems[0].startswith("api.url: credentials in the URL")
    assert TOKEN not in problems[0]


@pytest.mark.parametrize(
    ("text", "pages"),
    [
        ("", 120),  # lookback 1d: 100 pipelines an hour, 20 to a page
        ("collect:\n  lookback: 7d\n", 840),
        ("collect:\n  lookback: 1h\n", 10),  # at least 10
        ("collect:\n  max_pipeline_pages: 3\n", 3),
    ],
)
def test_the_pipeline_page_cap_is_derived_from_lookback(
    write_config: Callable[[str], Path], text: str, pages: int
) -> None:
    assert load_settings(write_config(text)).collect.pipeline_pages() == pages
