"""`webhooks sync` against the simulator: create, idempotence, updates, dry-run, the limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from exporter.cli import main
from exporter.settings import Settings, load_settings
from exporter.sharding import owner_of
from exporter.simulator import RunningSimulator, SimConfig
from exporter.simulator.webhooks import Webhook
from exporter.webhook_sync import WEBHOOK_NAME, run_sync

pytestmark = pytest.mark.anyio

URL = "https://ci-metrics.example.com/webhooks/circleci"
SECRET = SecretStr("s3cret-for-sync-1234")


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with RunningSimulator(SimConfig(projects=2, seed=3, history=timedelta(hours=1))) as s:
        yield s


def settings_for(sim: RunningSimulator) -> Settings:
    return load_settings(
        None,
        {"api": {"url": sim.api_url, "token": sim.token, "max_retries": 0},
         "projects": [{"slug": p.slug} for p in sim.world.projects]},
    )  # fmt: skip


def hooks(sim: RunningSimulator, index: int) -> list[Webhook]:
    return sim.webhooks.for_scope(sim.world.projects[index].id)


async def test_first_sync_creates_then_second_changes_nothing(sim: RunningSimulator) -> None:
    settings = settings_for(sim)
    first = await run_sync(settings, url=URL, secret=SECRET)
    assert [r.action for r in first] == ["created", "created"]
    for index in range(2):
        (hook,) = hooks(sim, index)
        assert (hook.name, hook.url, hook.signing_secret) == (
            WEBHOOK_NAME,
            URL,
            "s3cret-for-sync-1234",
        )
        assert set(hook.events) == {"workflow-completed", "job-completed"}
        assert hook.verify_tls
    second = await run_sync(settings, url=URL, secret=SECRET)
    assert [r.action for r in second] == ["unchanged", "unchanged"]
    assert (
        second[0].line()
        == f"{sim.world.projects[0].slug}: unchanged (webhook {hooks(sim, 0)[0].id})"
    )
    assert sim.stats()["requests"]["createWebhook"] == 2  # type: ignore[index]
    assert "updateWebhook" not in sim.stats()["requests"]  # type: ignore[operator]


async def test_dry_run_reports_and_changes_nothing(sim: RunningSimulator) -> None:
    results = await run_sync(settings_for(sim), url=URL, secret=SECRET, dry_run=True)
    assert [r.line() for r in results] == [
        f"{p.slug}: would be created" for p in sim.world.projects
    ]
    assert hooks(sim, 0) == [] and hooks(sim, 1) == []


async def test_changed_url_or_secret_updates_our_webhook(sim: RunningSimulator) -> None:
    settings = settings_for(sim)
    await run_sync(settings, url=URL, secret=SECRET)
    moved = "https://new-host.example.com/webhooks/circleci"
    dry = await run_sync(settings, url=moved, secret=SECRET, dry_run=True)
    assert dry[0].action == "updated" and "would be updated" in dry[0].line()
    assert hooks(sim, 0)[0].url == URL
    results = await run_sync(settings, url=moved, secret=SecretStr("rotated-secret-9876"))
    assert [r.action for r in results] == ["updated", "updated"]
    assert results[0].detail.endswith("url, secret")
    (hook,) = hooks(sim, 0)
    assert (hook.url, hook.signing_secret) == (moved, "rotated-secret-9876")


def add_foreign_hooks(sim: RunningSimulator, index: int, count: int) -> None:
    project = sim.world.projects[index]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(count):
        sim.webhooks.add(Webhook(sim.webhooks.new_id(), f"other-{n}", f"https://o{n}.example",
                                 True, "x", project.id, ("job-completed",), now, now))  # fmt: skip


async def test_sixth_webhook_is_refused_with_a_clear_message(sim: RunningSimulator) -> None:
    add_foreign_hooks(sim, 0, 5)
    results = await run_sync(settings_for(sim), url=URL, secret=SECRET)
    assert results[0].action == "skipped"
    assert "5 webhooks" in results[0].line() and "limit" in results[0].line()
    assert results[1].action == "created"
    assert len(hooks(sim, 0)) == 5


async def test_our_webhook_among_five_is_still_managed(sim: RunningSimulator) -> None:
    add_foreign_hooks(sim, 0, 4)
    settings = settings_for(sim)
    assert (await run_sync(settings, url=URL, secret=SECRET))[0].action == "created"
    assert (await run_sync(settings, url=URL, secret=SECRET))[0].action == "unchanged"


async def test_unknown_project_is_skipped_and_the_others_synced(sim: RunningSimulator) -> None:
    settings = load_settings(
        None,
        {"api": {"url": sim.api_url, "token": sim.token, "max_retries": 0},
         "projects": [{"slug": "gh/nobody/nothing"}, {"slug": sim.world.projects[0].slug}]},
    )  # fmt: skip
    results = await run_sync(settings, url=URL, secret=SECRET)
    assert [r.action for r in results] == ["skipped", "created"]
    assert results[0].failed and "404" in results[0].detail


TEMPLATE = "https://metrics.example.com/shard-{shard}/webhooks/circleci"


async def test_url_template_points_each_webhook_at_its_owning_shard() -> None:
    config = SimConfig(projects=8, seed=3, history=timedelta(hours=1))
    async with RunningSimulator(config) as sim:
        settings = load_settings(
            None,
            {"api": {"url": sim.api_url, "token": sim.token, "max_retries": 0},
             "projects": [{"slug": p.slug} for p in sim.world.projects],
             "sharding": {"total_shards": 3}},  # no shard: sync covers every shard at once
        )  # fmt: skip
        results = await run_sync(settings, url_template=TEMPLATE, secret=SECRET)
        assert [r.action for r in results] == ["created"] * 8
        owners = {}
        for index, project in enumerate(sim.world.projects):
            owners[project.slug] = owner_of(project.slug, 3)
            (hook,) = hooks(sim, index)
            assert hook.url == TEMPLATE.format(shard=owners[project.slug])
        assert len(set(owners.values())) > 1  # the projects really are spread
        again = await run_sync(settings, url_template=TEMPLATE, secret=SECRET)
        assert [r.action for r in again] == ["unchanged"] * 8


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--url", "https://x.example/webhooks/circleci"],
         "webhooks sync: --url sends every project's events to one URL, but there are 3 "
         "shards: use --url-template with {shard}"),
        (["--url-template", "https://x.example/webhooks/circleci"],
         "webhooks sync: --url-template 'https://x.example/webhooks/circleci' has no {shard} "
         "field to put the shard number in"),
        (["--url-template", "https://x.example/{shard}/{zone}"],
         "webhooks sync: --url-template 'https://x.example/{shard}/{zone}': unknown field "
         "{zone}; the only field is {shard}"),
    ],
)  # fmt: skip
def test_sync_target_problems_are_one_line_errors(
    args: list[str],
    problem: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CIRCLECI_TOKEN", "t")
    monkeypatch.setenv("CIRCLECI_WEBHOOK_SECRET", "s")
    monkeypatch.setenv("CIRCLECI_EXPORTER_PROJECTS", '[{"slug": "gh/acme/api"}]')
    assert main(["webhooks", "sync", "--total-shards", "3", *args]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"circleci-exporter: {problem}"]


def test_sync_url_and_url_template_exclude_each_other(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["webhooks", "sync", "--url", "https://a.example/", "--url-template", TEMPLATE])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
