"""Sharding (issue 15): the stable slug hash, ownership, the pod-name ordinal, the webhook URL
template, the settings that choose a shard, and the one place every project passes through."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections import Counter

import pytest
import yaml

from exporter.cli import main
from exporter.components import build_components, insights_orgs, request_rate
from exporter.settings import ConfigError, OrgSettings, load_settings
from exporter.sharding import (
    Shard,
    check_url_template,
    normalized_slug,
    ordinal_of_pod_name,
    owner_of,
    shard_url,
    slug_hash,
)


def test_hash_is_the_documented_sha256_prefix() -> None:
    # `printf gh/acme/api | sha256sum`: c1e2838bf20e2e26…, the value docs/architecture.md cites.
    assert slug_hash("gh/acme/api") == 0xC1E2838BF20E2E26
    expected = int.from_bytes(hashlib.sha256(b"bb/acme/web").digest()[:8], "big")
    assert slug_hash("bb/acme/web") == expected


def test_hash_is_the_same_in_another_process_whatever_its_hash_seed() -> None:
    code = "from exporter.sharding import slug_hash; print(slug_hash('gh/acme/api'))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert outputs == {str(slug_hash("gh/acme/api"))}


@pytest.mark.parametrize(
    "spelling", ["gh/acme/api", "GH/Acme/API", "github/acme/api", "GitHub/ACME/api", " gh/acme/api"]
)
def test_every_spelling_of_a_slug_has_one_owner(spelling: str) -> None:
    assert normalized_slug(spelling) == "gh/acme/api"
    assert owner_of(spelling, 7) == owner_of("gh/acme/api", 7)


def test_bitbucket_and_standalone_slugs_normalize_too() -> None:
    assert normalized_slug("bitbucket/Team/Web") == "bb/team/web"
    assert normalized_slug("circleci/AbC/DeF") == "circleci/abc/def"


def test_projects_spread_over_the_shards_and_each_has_exactly_one() -> None:
    slugs = [f"gh/org{i % 7}/repo-{i}" for i in range(3000)]
    shards = [Shard(index, 3) for index in range(3)]
    owners = [[s.index for s in shards if s.owns(slug)] for slug in slugs]
    assert all(len(found) == 1 for found in owners)
    spread = Counter(found[0] for found in owners)
    assert set(spread) == {0, 1, 2}
    assert all(900 < count < 1100 for count in spread.values()), spread


def test_one_shard_owns_everything() -> None:
    assert Shard().owns("gh/anything/at-all")
    assert not Shard().sharded and Shard(1, 2).sharded


@pytest.mark.parametrize(("index", "total"), [(3, 3), (-1, 2), (0, 0)])
def test_impossible_shards_are_refused(index: int, total: int) -> None:
    with pytest.raises(ValueError, match="must be 0 to total_shards - 1"):
        Shard(index, total)


@pytest.mark.parametrize(
    ("name", "ordinal"),
    [("circleci-exporter-0", 0), ("circleci-exporter-2", 2), ("a-b-c-17", 17), ("x-10\n", 10)],
)
def test_pod_name_ordinal(name: str, ordinal: int) -> None:
    assert ordinal_of_pod_name(name) == ordinal


@pytest.mark.parametrize(
    "name", ["circleci-exporter", "exporter-7d9f8-xk2lp", "exporter-01", "7", "", "x-1234567890"]
)
def test_pod_name_without_an_ordinal_is_a_clear_error(name: str) -> None:
    with pytest.raises(ValueError, match=r"has no StatefulSet ordinal suffix like -0, -1"):
        ordinal_of_pod_name(name)


def test_url_template_puts_in_the_shard_number() -> None:
    template = "https://metrics.example.com/shard-{shard}/webhooks/circleci"
    check_url_template(template)
    assert shard_url(template, 2) == "https://metrics.example.com/shard-2/webhooks/circleci"
    check_url_template("https://exporter-{shard:02d}.example.com/webhooks/circleci")
    assert shard_url("http://e-{shard:02d}/", 3) == "http://e-03/"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("https://metrics.example.com/webhooks/circleci", "has no {shard} field"),
        ("https://m.example.com/{shard}/{region}", "unknown field {region}; the only field"),
        ("https://m.example.com/{}/x", "unknown field {}"),
        ("https://m.example.com/{shard.x}", "unknown field {shard.x}"),
        ("https://m.example.com/{shard", "is not a valid template"),
        ("ftp://m.example.com/{shard}", "is not an http(s) URL"),
    ],
)
def test_bad_url_templates_are_one_line_errors(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        check_url_template(template)
    assert "\n" not in str(err.value)


def test_settings_choose_the_shard_from_keys() -> None:
    settings = load_settings(None, {"sharding": {"shard": 1, "total_shards": 3}})
    assert settings.sharding.resolved() == Shard(1, 3)
    assert load_settings(None, {}).sharding.resolved() == Shard(0, 1)


def test_settings_choose_the_shard_from_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CIRCLECI_EXPORTER_SHARDING__SHARD", "2")
    monkeypatch.setenv("CIRCLECI_EXPORTER_SHARDING__TOTAL_SHARDS", "4")
    assert load_settings(None, {}).sharding.resolved() == Shard(2, 4)


@pytest.mark.parametrize(
    ("sharding", "problem"),
    [
        ({"shard": 3, "total_shards": 3}, "sharding: shard 3 must be below total_shards (3)"),
        ({"shard": 0, "from_pod_name": True}, "sharding: set shard or from_pod_name, not both"),
        ({"total_shards": 0}, "sharding.total_shards: Input should be greater than or equal to 1"),
    ],
)
def test_contradictory_settings_are_one_line_errors(sharding: object, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, {"sharding": sharding})
    assert err.value.problems == [problem]


def test_several_shards_need_to_know_which_one_this_is() -> None:
    settings = load_settings(None, {"sharding": {"total_shards": 3}})  # enough for webhooks sync
    with pytest.raises(ConfigError, match=r"say which shard this is with sharding\.shard"):
        settings.sharding.resolved()


def test_shard_from_pod_name_prefers_pod_name_then_hostname() -> None:
    sharding = load_settings(None, {"sharding": {"from_pod_name": True, "total_shards": 3}})
    env = {"POD_NAME": "exporter-2", "HOSTNAME": "exporter-1"}
    assert sharding.sharding.resolved(env) == Shard(2, 3)
    assert sharding.sharding.resolved({"HOSTNAME": "exporter-1"}) == Shard(1, 3)


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({}, "sharding.from_pod_name: neither POD_NAME nor HOSTNAME is set"),
        ({"HOSTNAME": "exporter-7d9f8-xk2lp"}, "HOSTNAME: pod name 'exporter-7d9f8-xk2lp' has no"),
        ({"POD_NAME": "exporter-3"}, "POD_NAME: pod ordinal 3 is not below total_shards (3)"),
    ],
)
def test_shard_from_pod_name_without_a_usable_ordinal(env: dict[str, str], problem: str) -> None:
    sharding = load_settings(None, {"sharding": {"from_pod_name": True, "total_shards": 3}})
    with pytest.raises(ConfigError) as err:
        sharding.sharding.resolved(env)
    (line,) = err.value.problems
    assert problem in line


def test_rate_limit_split_divides_the_rate_and_the_burst() -> None:
    api = {"requests_per_second": 9, "burst": 20}
    shared = {"shard": 0, "total_shards": 3}
    whole = load_settings(None, {"api": api, "sharding": shared})
    assert request_rate(whole) == (9.0, 20)  # each shard has a token of its own
    split = load_settings(
        None, {"api": api, "sharding": shared, "collect": {"rate_limit_split": True}}
    )
    assert request_rate(split) == (3.0, 6)
    tiny = load_settings(
        None,
        {"api": {"burst": 2}, "sharding": shared, "collect": {"rate_limit_split": True}},
    )
    assert request_rate(tiny).burst == 1


SLUGS = [f"gh/acme/repo-{i}" for i in range(16)]
CONFIGURED = [SLUGS[i] for i in (0, 1, 3, 4, 8)]
DISCOVERED = [slug for slug in SLUGS if slug not in CONFIGURED]


@pytest.mark.anyio
@pytest.mark.parametrize("index", [0, 1, 2])
async def test_configured_and_discovered_projects_outside_the_shard_are_refused(
    index: int,
) -> None:
    settings = load_settings(
        None,
        {
            "projects": [{"slug": slug} for slug in CONFIGURED],
            "orgs": [{"slug": "gh/acme"}],
            "sharding": {"shard": index, "total_shards": 3},
        },
    )
    owned = {slug for slug in SLUGS if owner_of(slug, 3) == index}
    async with build_components(settings) as parts:
        assert set(parts.live.projects) == owned & set(CONFIGURED)
        # What discovery and the org feed find goes through the same door.
        for slug in DISCOVERED:
            added = parts.live.add_project(slug, OrgSettings(slug="gh/acme"))
            assert (added is not None) == (slug in owned)
        assert set(parts.live.projects) == owned
        info = {"shard": str(index), "total_shards": "3"}
        assert parts.registry.get_sample_value("circleci_exporter_shard_info", info) == 1
        projects = parts.registry.get_sample_value("circleci_exporter_shard_projects")
        assert projects == len(owned)


def test_the_fixture_slugs_cover_every_shard() -> None:
    assert {owner_of(slug, 3) for slug in CONFIGURED} == {0, 1, 2}
    assert {owner_of(slug, 3) for slug in DISCOVERED} == {0, 1, 2}


@pytest.fixture
def token_and_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCLECI_TOKEN", "t")
    monkeypatch.setenv("CIRCLECI_EXPORTER_PROJECTS", '[{"slug": "gh/acme/api"}]')
    monkeypatch.delenv("POD_NAME", raising=False)


@pytest.mark.usefixtures("token_and_project")
@pytest.mark.parametrize(
    ("args", "env", "problem"),
    [
        (["--shard", "3", "--total-shards", "3"], {},
         "sharding: shard 3 must be below total_shards (3)"),
        (["--total-shards", "2"], {},
         "sharding.total_shards is 2: say which shard this is with sharding.shard (--shard) or "
         "sharding.from_pod_name (--shard.from-pod-name)"),
        (["--shard", "two"], {},
         "sharding.shard: Input should be a valid integer, unable to parse string as an integer"),
        (["--shard.from-pod-name", "--total-shards", "3"], {"HOSTNAME": "exporter-abc12"},
         "sharding.from_pod_name: HOSTNAME: pod name 'exporter-abc12' has no StatefulSet "
         "ordinal suffix like -0, -1, …"),
    ],
)  # fmt: skip
def test_cli_shard_flags_are_checked_at_start(
    args: list[str],
    env: dict[str, str],
    problem: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main([*args, "--check-config"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"circleci-exporter: {problem}"]


@pytest.mark.usefixtures("token_and_project")
def test_cli_shard_from_pod_name_is_a_setting_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POD_NAME", "circleci-exporter-1")
    assert main(["--shard.from-pod-name", "--total-shards", "3", "--check-config"]) == 0
    sharding = yaml.safe_load(capsys.readouterr().out)["sharding"]
    assert sharding == {"shard": None, "total_shards": 3, "from_pod_name": True}


def test_each_orgs_insights_summary_is_read_by_exactly_one_shard() -> None:
    config = {
        "orgs": [{"slug": "gh/acme"}, {"slug": "bb/team"}],
        "projects": [{"slug": "gh/other/api"}, {"slug": "github/acme/web"}],
    }
    everything = insights_orgs(load_settings(None, config), Shard())
    assert everything == {"gh/acme", "bb/team", "gh/other"}
    readers = Counter(
        org
        for index in range(3)
        for org in insights_orgs(load_settings(None, config), Shard(index, 3))
    )
    assert readers == dict.fromkeys(everything, 1)
