import pytest

from exporter.circleci.slugs import (
    job_url,
    normalize_org_slug,
    normalize_project_slug,
    org_slug_of,
    pipeline_url,
    project_url,
    v1_project_slug,
    workflow_url,
)

STANDALONE = "circleci/43G3kM5RtfFE7v5sa4nWAU/44n9pujWcTnVZ2b5S8Fnat"
WORKFLOW_ID = "fda08377-fe7e-46b1-8992-3a7aaecac9c3"


@pytest.mark.parametrize(
    ("slug", "expected"),
    [
        ("gh/acme/api", "gh/acme/api"),
        ("github/acme/api", "gh/acme/api"),
        ("GitHub/acme/api", "gh/acme/api"),
        ("bitbucket/acme/api", "bb/acme/api"),
        ("bb/acme/api", "bb/acme/api"),
        ("/gh/acme/api/", "gh/acme/api"),
        (STANDALONE, STANDALONE),
    ],
)
def test_normalize_project_slug(slug: str, expected: str) -> None:
    assert normalize_project_slug(slug) == expected


@pytest.mark.parametrize("slug", ["", "gh/acme", "gh//api", "gh/acme/api/extra"])
def test_normalize_project_slug_rejects_malformed(slug: str) -> None:
    with pytest.raises(ValueError, match="expected <vcs>/<org>/<repo>"):
        normalize_project_slug(slug)


def test_org_slugs() -> None:
    assert normalize_org_slug("github/acme") == "gh/acme"
    standalone_org = "circleci/43G3kM5RtfFE7v5sa4nWAU"
    assert normalize_org_slug(standalone_org) == standalone_org
    assert org_slug_of("bitbucket/acme/api") == "bb/acme"
    assert org_slug_of(STANDALONE) == standalone_org
    with pytest.raises(ValueError, match="expected <vcs>/<org>"):
        normalize_org_slug("gh/acme/api")


def test_v1_slugs_use_documented_long_vcs_names() -> None:
    assert v1_project_slug("gh/acme/api") == "github/acme/api"
    assert v1_project_slug("bitbucket/acme/api") == "bitbucket/acme/api"
    assert v1_project_slug(STANDALONE) == STANDALONE


def test_app_links_use_canonical_long_vcs_form() -> None:
    assert project_url("gh/acme/api") == "https://app.circleci.com/pipelines/github/acme/api"
    assert (
        project_url("bb/acme/api", branch="feature/login")
        == "https://app.circleci.com/pipelines/bitbucket/acme/api?branch=feature%2Flogin"
    )
    assert pipeline_url("gh/acme/api", 1042) == (
        "https://app.circleci.com/pipelines/github/acme/api/1042"
    )
    assert workflow_url("github/acme/api", 1042, WORKFLOW_ID) == (
        f"https://app.circleci.com/pipelines/github/acme/api/1042/workflows/{WORKFLOW_ID}"
    )
    assert job_url("gh/acme/api", 1042, WORKFLOW_ID, 8812) == (
        f"https://app.circleci.com/pipelines/github/acme/api/1042/workflows/{WORKFLOW_ID}/jobs/8812"
    )


def test_standalone_links_keep_opaque_ids() -> None:
    assert job_url(STANDALONE, 17, WORKFLOW_ID, 3) == (
        f"https://app.circleci.com/pipelines/{STANDALONE}/17/workflows/{WORKFLOW_ID}/jobs/3"
    )


def test_approval_job_without_number_links_to_its_workflow() -> None:
    assert job_url("gh/acme/api", 1042, WORKFLOW_ID, None) == workflow_url(
        "gh/acme/api", 1042, WORKFLOW_ID
    )
