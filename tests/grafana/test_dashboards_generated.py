"""The committed dashboard JSON is exactly what the generator produces."""

from pathlib import Path

import pytest

from grafana.generate.__main__ import main
from grafana.generate.render import DASHBOARDS_DIR, render_all


def test_committed_dashboards_match_the_generator() -> None:
    rendered = render_all()
    committed = {
        path.name: path.read_text(encoding="utf-8") for path in DASHBOARDS_DIR.glob("*.json")
    }
    assert sorted(committed) == sorted(rendered), "run `python -m grafana.generate`"
    for name, text in rendered.items():
        assert committed[name] == text, f"{name} is stale: run `python -m grafana.generate`"


def test_generation_is_deterministic() -> None:
    assert render_all() == render_all()


def test_check_mode_reports_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--output", str(tmp_path)]) == 0
    assert main(["--output", str(tmp_path), "--check"]) == 0

    stale = tmp_path / "circleci-project.json"
    stale.write_text(stale.read_text(encoding="utf-8").replace("CircleCI / Project", "Edited"))
    assert main(["--output", str(tmp_path), "--check"]) == 1
    assert "circleci-project.json" in capsys.readouterr().err


def test_check_mode_reports_a_leftover_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--output", str(tmp_path)]) == 0
    (tmp_path / "old-dashboard.json").write_text("{}")
    assert main(["--output", str(tmp_path), "--check"]) == 1
    assert "old-dashboard.json" in capsys.readouterr().err
