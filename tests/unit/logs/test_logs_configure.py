"""`configure_logging`: one stderr handler on the root logger, in the chosen format."""

import json
import logging
from collections.abc import Iterator

import pytest

from exporter.logs import JsonFormatter, LogfmtFormatter, configure_logging

_QUIETED = ("httpx", "httpcore", "uvicorn.access")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in _QUIETED}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


@pytest.mark.parametrize(
    ("fmt", "formatter"), [("logfmt", LogfmtFormatter), ("json", JsonFormatter)]
)
def test_one_handler_with_the_chosen_formatter(fmt: str, formatter: type) -> None:
    configure_logging("info", fmt)
    configure_logging("info", fmt)  # configuring twice must not double every line

    [handler] = logging.getLogger().handlers
    assert isinstance(handler.formatter, formatter)


def test_level_filters_records(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("warning", "logfmt")
    logger = logging.getLogger("exporter.test")

    logger.info("hidden")
    logger.warning("shown", extra={"key": "collect.interval"})

    err = capsys.readouterr().err
    assert "hidden" not in err
    [line] = err.splitlines()
    assert line.endswith("level=warning logger=exporter.test msg=shown key=collect.interval")


def test_json_lines_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("debug", "json")

    logging.getLogger("exporter.test").debug("details", extra={"endpoint": "pipelines"})

    captured = capsys.readouterr()
    assert captured.out == ""
    record = json.loads(captured.err)
    assert (record["level"], record["endpoint"]) == ("debug", "pipelines")


def test_http_library_request_logs_are_quieted() -> None:
    configure_logging("debug", "logfmt")

    for name in _QUIETED:
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING
