"""A fresh clone, alone in an empty folder (no sibling `shared/` or anything else), collects every
test and passes a representative subset: the repository needs nothing outside itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Fast tests that read the vendored fixtures and the generated docs, one per area that used to
# reach outside the repository, plus the self-containment checks themselves.
SUBSET = (
    "tests/test_self_contained.py",
    "tests/unit/metrics/test_catalog_docs.py",
    "tests/unit/webhooks/test_webhook_signature.py",
    "tests/unit/webhooks/test_webhook_events.py",
    "tests/simulator/test_fidelity.py::test_kebab_case_flaky_tests_match_the_spec_as_published",
    "tests/unit/simulator/test_sim_server.py::test_signature_matches_circleci_vectors",
    "tests/unit/circleci/test_api_models.py",
    "tests/unit/settings/test_settings_reference_doc.py",
)


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    empty = tmp_path_factory.mktemp("alone")
    target = empty / "ocean-ci"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(target)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert [p.name for p in empty.iterdir()] == ["ocean-ci"]
    return target


def run_in(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """This interpreter (its installed dependencies) on the clone's code, from the clone's root."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "PYTHON"))}
    env["PYTHONPATH"] = str(clone)  # subprocesses, too, import the clone's `exporter`
    return subprocess.run(
        [sys.executable, *args],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_clone_imports_its_own_code(clone: Path) -> None:
    result = run_in(clone, "-c", "import exporter, tests; print(exporter.__file__, tests.__file__)")
    assert result.returncode == 0, result.stderr
    assert all(Path(p).is_relative_to(clone) for p in result.stdout.split()), result.stdout


def test_the_clone_collects_every_test(clone: Path) -> None:
    result = run_in(clone, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    assert len(collected) > 500, result.stdout[-2000:]


def test_a_representative_subset_passes_in_the_clone(clone: Path) -> None:
    result = run_in(clone, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUBSET)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and " skipped" not in result.stdout, result.stdout[-2000:]
