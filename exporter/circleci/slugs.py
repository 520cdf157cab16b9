"""Project and org slugs, and links to the CircleCI web app.

Slug forms (docs/circleci-api.md §Slugs):
- OAuth projects: `gh/<org>/<repo>` or `bb/<org>/<repo>`; the API also accepts, and webhooks send,
  the long `github/` and `bitbucket/` prefixes. We normalise to the short form before joining data
  from the two.
- GitLab, GitHub App and Bitbucket DC projects: `circleci/<org-id>/<project-id>`, opaque ids.

For API v1.1 we send the documented long prefixes (`github`, `bitbucket`) and the standalone
`circleci/...` slug as-is: the v1.1 docs only list the long forms, and CircleCI's own MCP server
calls v1.1 with `circleci/...` slugs (docs/circleci-api.md §v1.1 single job), so every form we send
is known to work.
"""

from urllib.parse import quote, urlencode

APP_URL = "https://app.circleci.com"

_SHORT_VCS = {"github": "gh", "bitbucket": "bb"}
_LONG_VCS = {short: long for long, short in _SHORT_VCS.items()}


def _split(slug: str, parts: int, expected: str) -> list[str]:
    pieces = slug.strip().strip("/").split("/")
    if len(pieces) != parts or not all(pieces):
        raise ValueError(f"invalid slug {slug!r}: expected {expected}")
    pieces[0] = _SHORT_VCS.get(pieces[0].lower(), pieces[0].lower())
    return pieces


def normalize_project_slug(slug: str) -> str:
    """`github/org/repo` → `gh/org/repo`; `circleci/<org-id>/<project-id>` is returned unchanged."""
    return "/".join(_split(slug, 3, "<vcs>/<org>/<repo>, e.g. gh/acme/api"))


def normalize_org_slug(slug: str) -> str:
    """`github/org` → `gh/org`; `circleci/<org-id>` is returned unchanged."""
    return "/".join(_split(slug, 2, "<vcs>/<org>, e.g. gh/acme"))


def org_slug_of(project_slug: str) -> str:
    """The org slug a project belongs to: `gh/acme/api` → `gh/acme`."""
    vcs, org, _ = _split(project_slug, 3, "<vcs>/<org>/<repo>")
    return f"{vcs}/{org}"


def v1_project_slug(project_slug: str) -> str:
    """The slug for API v1.1 paths: `gh/acme/api` → `github/acme/api`."""
    vcs, org, repo = _split(project_slug, 3, "<vcs>/<org>/<repo>")
    return f"{_LONG_VCS.get(vcs, vcs)}/{org}/{repo}"


def project_url(project_slug: str, branch: str | None = None) -> str:
    """The project's pipelines page; canonical links use the long `github/` form
    (docs/circleci-api.md §Web app links)."""
    vcs, org, repo = _split(project_slug, 3, "<vcs>/<org>/<repo>")
    path = "/".join(quote(part, safe="") for part in (_LONG_VCS.get(vcs, vcs), org, repo))
    query = f"?{urlencode({'branch': branch})}" if branch else ""
    return f"{APP_URL}/pipelines/{path}{query}"


def pipeline_url(project_slug: str, pipeline_number: int) -> str:
    return f"{project_url(project_slug)}/{pipeline_number}"


def workflow_url(project_slug: str, pipeline_number: int, workflow_id: str) -> str:
    return f"{pipeline_url(project_slug, pipeline_number)}/workflows/{quote(workflow_id, safe='')}"


def job_url(
    project_slug: str, pipeline_number: int, workflow_id: str, job_number: int | None
) -> str:
    """The job page; approval jobs have no number, so they link to their workflow
    (docs/circleci-api.md §Web app links)."""
    workflow = workflow_url(project_slug, pipeline_number, workflow_id)
    return workflow if job_number is None else f"{workflow}/jobs/{job_number}"
