"""The JSON formatter: one JSON object per line, `extra=` fields as members."""

import json
import logging
from datetime import datetime

from exporter.logs import JsonFormatter


def _record(msg: str = "polled", *, exc: BaseException | None = None, **extra: object) -> str:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    record = logging.LogRecord("exporter.collect", logging.WARNING, __file__, 1, msg, (), exc_info)
    record.__dict__.update(extra)
    return JsonFormatter().format(record)


def test_standard_and_extra_fields() -> None:
    data = json.loads(_record(project="gh/acme/api", runs=3, ratio=0.5, ok=False))

    assert data == {
        "ts": data["ts"],
        "level": "warning",
        "logger": "exporter.collect",
        "msg": "polled",
        "project": "gh/acme/api",
        "runs": 3,
        "ratio": 0.5,
        "ok": False,
    }
    assert datetime.fromisoformat(data["ts"]).utcoffset() is not None


def test_message_arguments_are_interpolated() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d runs", (4,), None)

    assert json.loads(JsonFormatter().format(record))["msg"] == "4 runs"


def test_values_json_cannot_encode_become_strings() -> None:
    data = json.loads(_record(when=datetime(2024, 5, 1, 12, 0), items={"a"}))

    assert data["when"] == "2024-05-01 12:00:00"
    assert data["items"] == "{'a'}"


def test_quotes_and_newlines_stay_on_one_line() -> None:
    line = _record('say "hi"\nthen leave')

    assert "\n" not in line
    assert json.loads(line)["msg"] == 'say "hi"\nthen leave'


def test_exception_is_one_field_without_traceback() -> None:
    try:
        raise ValueError("bad page token")
    except ValueError as err:
        line = _record("poll failed", exc=err)

    data = json.loads(line)
    assert data["error"] == "ValueError: bad page token"
    assert "Traceback" not in line
