"""The fake organisation's fixed parts: orgs, projects, their branches, workflows and tests."""

from __future__ import annotations

import random
import string
import uuid
from datetime import datetime, timedelta

from exporter.simulator.model import (
    Actor,
    JobTemplate,
    Organization,
    Project,
    TestCase,
    WorkflowTemplate,
)
from exporter.simulator.schedules import build_schedules

_REPOS = (
    "api", "web", "billing", "auth-service", "mobile-app", "data-pipeline", "infra", "docs",
    "search", "payments", "notifications", "gateway", "analytics", "ml-models", "frontend",
    "backend", "cli", "sdk-python", "sdk-go", "scheduler",
)  # fmt: skip
_FEATURE_BRANCHES = (
    "feature/login-page", "feature/rate-limits", "fix/flaky-cache", "renovate/deps",
    "chore/upgrade-python", "feature/dark-mode", "fix/timezone-bug", "release/2.4",
)  # fmt: skip
_TEST_AREAS = ("models", "views", "client", "cache", "auth", "billing", "search", "utils")
_USERS = ("ada", "grace", "linus", "margaret", "ken", "barbara", "dennis", "frances")
_BASE58 = "".join(c for c in string.ascii_letters + string.digits if c not in "0OIl")


def random_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _base58_id(rng: random.Random) -> str:
    return "".join(rng.choice(_BASE58) for _ in range(22))


def build_organizations(seed: int) -> tuple[Organization, Organization, Organization]:
    rng = random.Random(f"{seed}:organizations")
    github = Organization(random_uuid(rng), "ocean-labs", "gh/ocean-labs", "github")
    bitbucket = Organization(random_uuid(rng), "ocean-bb", "bb/ocean-bb", "bitbucket")
    standalone_key = _base58_id(rng)
    standalone = Organization(
        random_uuid(rng), "ocean-gitlab", f"circleci/{standalone_key}", "circleci"
    )
    return github, bitbucket, standalone


def build_users(seed: int) -> tuple[Actor, ...]:
    rng = random.Random(f"{seed}:users")
    return tuple(Actor(random_uuid(rng), login) for login in _USERS)


def build_project(
    seed: int, index: int, orgs: tuple[Organization, ...], origin: datetime
) -> Project:
    """Project `index`: three in five on GitHub, one on Bitbucket, one standalone (GitLab)."""
    rng = random.Random(f"{seed}:project:{index}")
    github, bitbucket, standalone = orgs
    name = _REPOS[index % len(_REPOS)]
    if index >= len(_REPOS):
        name = f"{name}-{index // len(_REPOS) + 1}"
    project_id = random_uuid(rng)
    kind = index % 5
    if kind == 3:
        org, provider = bitbucket, "Bitbucket"
        slug, vcs_url = f"bb/{org.name}/{name}", f"https://bitbucket.org/{org.name}/{name}"
    elif kind == 4:
        org, provider = standalone, "CircleCI"
        slug = f"{org.slug}/{_base58_id(rng)}"
        vcs_url = f"https://gitlab.com/{org.name}/{name}"
    else:
        org, provider = github, "GitHub"
        slug, vcs_url = f"gh/{org.name}/{name}", f"https://github.com/{org.name}/{name}"
    default_branch = "master" if index % 7 == 2 else "main"
    branches = tuple(rng.sample(_FEATURE_BRANCHES, rng.randint(3, 5)))
    if provider == "GitHub":
        # Pull-request refs appear as branches like pull/<n>/head (docs/circleci-api.md §Pipelines).
        branches = (*branches, f"pull/{rng.randint(10, 900)}/head")
    workflows = [_build_and_test(rng)]
    if rng.random() < 0.6:
        workflows.append(_deploy())
    nightly = None
    if rng.random() < 0.5:
        workflows.append(_nightly(rng))
        nightly_id = random_uuid(rng)
        hour = rng.randint(0, 5)
        created_at = (origin - timedelta(days=rng.randint(30, 400))).replace(microsecond=0)
        nightly = (nightly_id, hour, created_at, random_uuid(rng))
    schedules = build_schedules(
        seed=seed,
        index=index,
        org=org,
        default_branch=default_branch,
        nightly=nightly,
        origin=origin,
    )
    return Project(
        index=index,
        id=project_id,
        slug=slug,
        name=name,
        organization=org,
        provider=provider,  # type: ignore[arg-type]
        vcs_url=vcs_url,
        default_branch=default_branch,
        feature_branches=branches,
        workflows=tuple(workflows),
        schedules=schedules,
        mean_arrival_seconds=rng.uniform(20, 150) * 60,
    )


def _tests(rng: random.Random, count: int, suite: str, flaky: int) -> tuple[TestCase, ...]:
    flaky_indexes = set(rng.sample(range(count), flaky))
    tests = []
    for i in range(count):
        area = rng.choice(_TEST_AREAS)
        tests.append(
            TestCase(
                name=f"test_{area}_{suite}_{i:03d}",
                classname=f"tests.{suite}.test_{area}",
                file=f"tests/{suite}/test_{area}.py",
                mean_run_time=rng.lognormvariate(-2.0, 1.2),
                flake_rate=rng.uniform(0.01, 0.04) if i in flaky_indexes else 0.0,
                skipped=rng.random() < 0.03,
            )
        )
    return tuple(tests)


def _build_and_test(rng: random.Random) -> WorkflowTemplate:
    jobs = [
        JobTemplate("build", "build", (), rng.uniform(120, 360), fail_rate=0.02),
        JobTemplate(
            "lint",
            "build",
            ("build",),
            rng.uniform(40, 120),
            fail_rate=0.03,
            resource_class="small",
        ),
        JobTemplate(
            "unit-tests",
            "build",
            ("build",),
            rng.uniform(240, 720),
            fail_rate=0.005,
            tests=_tests(rng, rng.randint(30, 60), "unit", flaky=rng.randint(1, 3)),
            parallelism=rng.choice((2, 4)),
        ),
    ]
    if rng.random() < 0.5:
        jobs.append(
            JobTemplate(
                "integration-tests",
                "build",
                ("unit-tests", "lint"),
                rng.uniform(300, 900),
                fail_rate=0.01,
                tests=_tests(rng, rng.randint(10, 25), "integration", flaky=rng.randint(1, 2)),
                resource_class="large",
                executor="machine",
            )
        )
    return WorkflowTemplate("build-and-test", tuple(jobs), "push")


def _deploy() -> WorkflowTemplate:
    return WorkflowTemplate(
        "deploy",
        (
            JobTemplate("build-image", "build", (), 180, fail_rate=0.02, resource_class="large"),
            JobTemplate("hold", "approval", ("build-image",), 25 * 60),
            JobTemplate("deploy-production", "build", ("hold",), 240, fail_rate=0.03),
        ),
        "default-branch-push",
    )


def _nightly(rng: random.Random) -> WorkflowTemplate:
    return WorkflowTemplate(
        "nightly",
        (
            JobTemplate(
                "e2e-tests",
                "build",
                (),
                rng.uniform(900, 1800),
                fail_rate=0.02,
                tests=_tests(rng, rng.randint(15, 30), "e2e", flaky=rng.randint(2, 4)),
                resource_class="xlarge",
                executor="machine",
            ),
        ),
        "schedule",
    )
