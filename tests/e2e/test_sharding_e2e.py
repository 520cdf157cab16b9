"""Three shard processes (0, 1 and 2 of 3) and one unsharded process, the installed
`circleci-exporter` each, against one simulator over HTTP (issue 15, sharding): together the
shards serve exactly what the single process serves, each project from one shard only, for about
the same number of API requests.

The simulator's clock is manual and stands still, so all four see the same organisation. Each
process discovers projects from `orgs:` (every shard reads the org and keeps its own) and
collects once: the polling interval is an hour, so every request counted comes from start-up.
The GitHub org's projects come from discovery, the others from `projects:`.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import httpx
import pytest
import yaml
from anyio.abc import Process

from exporter.catalog import BY_NAME
from exporter.sharding import Shard, owner_of
from exporter.simulator import RunningSimulator, SimClock, SimConfig
from tests.conftest import EXPORTER, Samples, exposition_samples
from tests.e2e.test_exporter_process import stop
from tests.rules.binaries import free_port

pytestmark = pytest.mark.anyio

TOKEN = "CCIPAT_shard-e2e-token-0123456789"
PROJECTS = 12
ORG = "gh/ocean-labs"  # the simulator's GitHub org: its projects are discovered
# Per-project self-metrics that are about the collection, not the organisation; compared as a
# set of projects, not values (their values are timestamps of each process's own clock).
PER_PROJECT_SELF = ("circleci_up", "circleci_exporter_last_success_timestamp_seconds")


@dataclass
class Exporter:
    name: str
    shard: Shard
    url: str
    process: Process
    log: Path


@asynccontextmanager
async def exporter_process(
    tmp_path: Path,
    sim: RunningSimulator,
    name: str,
    shard: Shard,
    flags: list[str],
    env: dict[str, str],
) -> AsyncIterator[Exporter]:
    # The GitHub org's projects are discovered, the others listed.
    listed = [{"slug": p.slug} for p in sim.world.projects if p.slug not in discovered(sim)]
    assert 0 < len(listed) < PROJECTS
    config = tmp_path / f"{name}.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "orgs": [{"slug": ORG}],
                "projects": listed,
                "collect": {"interval": "1h"},
                "api": {"requests_per_second": 500, "burst": 100},
            }
        )
    )
    address = f"127.0.0.1:{free_port()}"
    log = tmp_path / f"{name}.log"
    base = {"CIRCLECI_TOKEN": TOKEN, "CIRCLECI_API_URL": sim.api_url, "PATH": "/usr/bin:/bin"}
    command = [str(EXPORTER), "--config", str(config), "--web.listen-address", address, *flags]
    with log.open("wb") as out:
        process = await anyio.open_process(
            command, stdout=out, stderr=subprocess.STDOUT, env={**base, **env}
        )
    try:
        yield Exporter(name, shard, f"http://{address}", process, log)
    finally:
        await stop(process)


def collections_due(sim: RunningSimulator, shard: Shard) -> set[tuple[str, str]]:
    """(key, collector) of each collection an exporter makes at start-up: every project it owns
    by the live collector, the listed ones by the Insights and schedules collectors too (their
    first sweep starts before discovery has found the others, which wait for the next one), and
    every org it owns by Insights."""
    owned = {p.slug for p in sim.world.projects if shard.owns(p.slug)}
    due = {(slug, "live") for slug in owned}
    due |= {(slug, c) for slug in owned - discovered(sim) for c in ("insights", "schedules")}
    orgs = {p.slug.rsplit("/", 1)[0] for p in sim.world.projects}
    return due | {(org, "insights") for org in orgs if shard.owns(org)}


def discovered(sim: RunningSimulator) -> set[str]:
    return {p.slug for p in sim.world.projects if p.slug.startswith(f"{ORG}/")}


def collections_done(samples: Samples) -> set[tuple[str, str]]:
    return {
        (dict(labels)["project"], dict(labels)["collector"])
        for name, labels in samples
        if name == "circleci_exporter_last_success_timestamp_seconds"
    }


async def settled_samples(
    client: httpx.AsyncClient, exporter: Exporter, due: set[tuple[str, str]]
) -> Samples:
    """The exporter's samples once every start-up collection has succeeded (the Insights sweep
    and the schedule reads finish after readiness) and two scrapes agree."""
    missing = due
    with anyio.move_on_after(120):
        previous: Samples | None = None
        while True:
            await anyio.sleep(1.5)  # the publisher renders at most once a second
            assert exporter.process.returncode is None, exporter.log.read_text()
            try:
                body = (await client.get(f"{exporter.url}/metrics")).text
            except httpx.TransportError:
                continue  # not listening yet
            samples = exposition_samples(body)
            missing = due - collections_done(samples)
            if missing:
                continue
            if previous is not None and stable(previous) == stable(samples):
                return samples
            previous = samples
    raise AssertionError(f"{exporter.name} has not settled; not collected yet: {sorted(missing)}")


def stable(samples: Samples) -> tuple[Samples, float]:
    return data(samples), requests(samples)


def is_data(sample_name: str) -> bool:
    """Whether a sample's family (histogram and counter suffixes aside) is about the
    organisation, not the exporter itself."""
    for suffix in ("", "_total", "_created", "_bucket", "_count", "_sum"):
        if sample_name.endswith(suffix):
            family = sample_name.removesuffix(suffix)
            spec = BY_NAME.get(family) or BY_NAME.get(f"{family}_total")
            if spec is not None:
                return spec.source != "exporter"
    raise AssertionError(f"{sample_name} is not in the catalog")


def data(samples: Samples) -> Samples:
    """The samples about the organisation: every family but the exporter's self-metrics."""
    return {key: value for key, value in samples.items() if is_data(key[0])}


def requests(samples: Samples) -> float:
    return sum(v for (n, _), v in samples.items() if n == "circleci_exporter_api_requests_total")


def projects(samples: Samples, family: str = "circleci_project_info") -> set[str]:
    return {dict(labels)["project"] for (name, labels) in samples if name == family}


async def test_three_shards_serve_together_what_one_process_serves(tmp_path: Path) -> None:
    start = datetime.now(UTC).replace(microsecond=0)
    config = SimConfig(projects=PROJECTS, seed=7, history=timedelta(days=1), token=TOKEN)
    async with (
        RunningSimulator(config, clock=SimClock.manual(start)) as sim,
        AsyncExitStack() as stack,
        httpx.AsyncClient(timeout=30) as client,
    ):
        runs = [
            ("whole", Shard(), [], {}),
            ("shard-0", Shard(0, 3), ["--shard", "0", "--total-shards", "3"], {}),
            ("shard-1", Shard(1, 3), ["--shard", "1", "--total-shards", "3"], {}),
            # As in the `sharded` Kubernetes overlay: the ordinal of the StatefulSet pod.
            ("shard-2", Shard(2, 3), ["--shard.from-pod-name", "--total-shards", "3"],
             {"POD_NAME": "circleci-exporter-2"}),
        ]  # fmt: skip
        exporters = [
            await stack.enter_async_context(exporter_process(tmp_path, sim, *run)) for run in runs
        ]
        got: dict[str, Samples] = {}

        async def collect(exporter: Exporter) -> None:
            due = collections_due(sim, exporter.shard)
            got[exporter.name] = await settled_samples(client, exporter, due)

        async with anyio.create_task_group() as tg:
            for exporter in exporters:
                tg.start_soon(collect, exporter)

        whole, shards = got["whole"], [got[f"shard-{i}"] for i in range(3)]
        everything = {p.slug for p in sim.world.projects}
        assert projects(whole) == everything
        # Every project appears in exactly one shard: the one its slug hashes to.
        for index, samples in enumerate(shards):
            owned = {slug for slug in everything if owner_of(slug, 3) == index}
            assert owned, f"shard {index} owns none of the {PROJECTS} projects: pick another seed"
            assert projects(samples) == owned
            assert projects(samples, "circleci_up") == owned
            assert samples[("circleci_exporter_shard_projects", frozenset())] == len(owned)
            info = frozenset({"shard": str(index), "total_shards": "3"}.items())
            assert samples[("circleci_exporter_shard_info", info)] == 1
            # No series of a project it does not own, in any family; an org's summary (the
            # org's rows, its projects' rows among them) comes from the shard owning the org.
            for name, labels in data(samples):
                found = dict(labels)
                if "org" in found:
                    assert owner_of(found["org"], 3) == index, (name, found)
                else:
                    assert found.get("project") in (None, *owned), (name, found)
        assert whole[("circleci_exporter_shard_info", frozenset(
            {"shard": "0", "total_shards": "1"}.items()))] == 1  # fmt: skip

        # The union of the shards' series is the single process's, series by series.
        union: Samples = {}
        for samples in shards:
            overlap = set(union) & set(data(samples))
            assert not overlap, sorted(overlap)[:5]
            union.update(data(samples))
        assert len(data(whole)) > 1000  # a real organisation's worth of series
        missing = set(data(whole)) - set(union)
        extra = set(union) - set(data(whole))
        assert not missing and not extra, (sorted(missing)[:5], sorted(extra)[:5])
        differing = [key for key in union if union[key] != data(whole)[key]]
        assert not differing, [(k, union[k], data(whole)[k]) for k in differing[:5]]
        for family in PER_PROJECT_SELF:
            assert set().union(*(projects(s, family) for s in shards)) == projects(whole, family)

        # Together they cost about what one process costs: each shard reads the org itself.
        shard_requests = sum(requests(samples) for samples in shards)
        whole_requests = requests(whole)
        assert abs(shard_requests - whole_requests) <= 0.10 * whole_requests, (
            shard_requests,
            whole_requests,
        )
        # And the simulator saw exactly what the four processes counted.
        total = sim.stats()["requests_total"]
        assert total == whole_requests + shard_requests
        for exporter in exporters:
            await stop(exporter.process)
            assert "Traceback" not in exporter.log.read_text()
