"""The YAML shape the acceptance tests use, and how slugs are normalised."""

from collections.abc import Callable
from pathlib import Path

import pytest

from exporter.settings import ConfigError, load_settings

ACCEPTANCE_YAML = """\
projects:
  - slug: gh/acme/api
    branches: ["default", "release/*"]
orgs:
  - slug: gh/acme
collect:
  interval: 30s
  insights_interval: 15m
  insights_window: last-30-days
web:
  listen_address: ":10027"
"""


def test_acceptance_yaml_loads(write_config: Callable[[str], Path]) -> None:
    settings = load_settings(write_config(ACCEPTANCE_YAML))

    assert [(p.slug, p.branches) for p in settings.projects] == [
        ("gh/acme/api", ["default", "release/*"])
    ]
    assert [o.slug for o in settings.orgs] == ["gh/acme"]
    assert settings.collect.interval == 30.0
    assert settings.collect.insights_interval == 900.0
    assert settings.collect.insights_window == "last-30-days"
    assert settings.web.listen_address == ":10027"


@pytest.mark.parametrize(
    ("slug", "normalised"),
    [
        ("gh/acme/api", "gh/acme/api"),
        ("bb/acme/api", "bb/acme/api"),
        ("github/acme/api", "gh/acme/api"),
        ("bitbucket/acme/api", "bb/acme/api"),
        (
            "circleci/9a3b2c1d-0000-4000-8000-000000000001/5e6f7a8b-0000-4000-8000-000000000002",
            "circleci/9a3b2c1d-0000-4000-8000-000000000001/5e6f7a8b-0000-4000-8000-000000000002",
        ),
    ],
)
def test_project_slug_forms(
    write_config: Callable[[str], Path], slug: str, normalised: str
) -> None:
    settings = load_settings(write_config(f"projects:\n  - slug: {slug}\n"))

    assert settings.projects[0].slug == normalised


@pytest.mark.parametrize(
    ("slug", "normalised"),
    [("gh/acme", "gh/acme"), ("github/acme", "gh/acme"), ("bitbucket/acme", "bb/acme")],
)
def test_org_slug_forms(write_config: Callable[[str], Path], slug: str, normalised: str) -> None:
    settings = load_settings(write_config(f"orgs:\n  - slug: {slug}\n"))

    assert settings.orgs[0].slug == normalised


def test_the_same_project_under_two_spellings_is_listed_twice(
    write_config: Callable[[str], Path],
) -> None:
    path = write_config("projects:\n  - slug: gh/acme/api\n  - slug: github/acme/api\n")

    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    assert caught.value.problems == ["projects: gh/acme/api is listed twice"]


def test_project_branch_rules_fall_back_to_defaults(write_config: Callable[[str], Path]) -> None:
    path = write_config(
        "defaults:\n  branches: [main]\n  tags: true\n"
        "projects:\n  - slug: gh/acme/api\n    other_branches: fold\n"
    )
    settings = load_settings(path)

    rules = settings.branch_rules(settings.projects[0])

    assert (rules.branches, rules.other_branches, rules.tags) == (["main"], "fold", True)


def test_org_include_and_exclude_globs(write_config: Callable[[str], Path]) -> None:
    path = write_config(
        "orgs:\n  - slug: gh/acme\n    include: ['gh/acme/*']\n    exclude: ['gh/acme/old-*']\n"
    )
    org = load_settings(path).orgs[0]

    assert org.admits("gh/acme/api")
    assert not org.admits("gh/acme/old-api")
    assert not org.admits("gh/other/api")


def test_empty_file_means_defaults(write_config: Callable[[str], Path]) -> None:
    settings = load_settings(write_config(""))

    assert settings.projects == []
    assert settings.collect.interval == 30.0


def test_config_file_path_from_env_is_the_cli_s_job(
    write_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # CIRCLECI_EXPORTER_CONFIG shares the env prefix but is not a setting: it must not be
    # mistaken for an unknown key.
    monkeypatch.setenv("CIRCLECI_EXPORTER_CONFIG", str(write_config("collect:\n  interval: 1m\n")))

    assert load_settings(None).collect.interval == 30.0
