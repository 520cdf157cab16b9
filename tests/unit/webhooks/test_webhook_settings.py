"""The `webhooks:` settings, the CLI flag, and the relaxed polling interval."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from exporter.cli import main
from exporter.collect.live import LiveCollector
from exporter.settings import ConfigError, load_settings


def test_env_secret_is_split_for_rotation_and_files_add_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIRCLECI_WEBHOOK_SECRET", "new-one, old-one")
    extra = tmp_path / "secret"
    extra.write_text("from-a-file\n")
    settings = load_settings(None, {"webhooks": {"secret_files": [str(extra)]}})
    secrets = [s.get_secret_value() for s in settings.webhooks.resolved_secrets()]
    assert secrets == ["new-one", "old-one", "from-a-file"]


def test_secret_never_appears_in_the_effective_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCLECI_WEBHOOK_SECRET", "do-not-print-me")
    text = load_settings(None).effective_yaml()
    assert "do-not-print-me" not in text
    assert "secret: <secret>" in text


def test_unreadable_secret_file_is_a_one_line_error(tmp_path: Path) -> None:
    settings = load_settings(None, {"webhooks": {"secret_files": [str(tmp_path / "nope")]}})
    with pytest.raises(ConfigError, match=r"^webhooks.secret_files: cannot read .*nope"):
        settings.webhooks.resolved_secrets()


def test_listen_address_flag_sets_the_setting_and_needs_a_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIRCLECI_TOKEN", "t")
    monkeypatch.delenv("CIRCLECI_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("CIRCLECI_EXPORTER_PROJECTS", '[{"slug": "gh/acme/api"}]')
    code = main(["--webhook.listen-address", "127.0.0.1:0", "--check-config"])
    assert code == 2
    assert "webhooks.listen_address: webhooks need a signing secret" in capsys.readouterr().err
    monkeypatch.setenv("CIRCLECI_WEBHOOK_SECRET", "s")
    assert main(["--webhook.listen-address", "127.0.0.1:9999", "--check-config"]) == 0
    assert "listen_address: 127.0.0.1:9999" in capsys.readouterr().out


def test_sync_without_a_secret_fails_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIRCLECI_TOKEN", "t")
    monkeypatch.delenv("CIRCLECI_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("CIRCLECI_EXPORTER_PROJECTS", '[{"slug": "gh/acme/api"}]')
    assert main(["webhooks", "sync", "--url", "https://x.example/webhooks/circleci"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "circleci-exporter: webhooks sync: no signing secret: pass --secret-file, or set "
        "CIRCLECI_WEBHOOK_SECRET or webhooks.secret_files"
    ]


def live_at(now: float, **collect: Any) -> LiveCollector:
    settings = load_settings(None, {"collect": collect})
    return LiveCollector(settings, client=None, state=None, on_cycle=lambda: None,  # type: ignore[arg-type]
                         telemetry=None, clock=lambda: now)  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize(
    ("last_webhook_at", "expected"),
    [(None, 30.0),  # no webhook ever: poll normally
     (1000.0 - 10, 300.0),  # webhooks arriving: polling only reconciles
     (1000.0 - 299, 300.0),
     (1000.0 - 301, 30.0)],  # they stopped: back to the normal interval
)  # fmt: skip
def test_polling_relaxes_while_webhooks_arrive(
    last_webhook_at: float | None, expected: float
) -> None:
    live = live_at(1000.0, interval="30s", interval_with_webhooks="5m")
    project = SimpleNamespace(last_webhook_at=last_webhook_at)
    assert live.interval_for(project) == expected  # type: ignore[arg-type]
