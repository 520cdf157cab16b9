"""The logfmt formatter: one `key=value` line per record, quoted and escaped when needed."""

import logging

import pytest

from exporter.logs import LogfmtFormatter


def _record(msg: str = "polled", *, exc: BaseException | None = None, **extra: object) -> str:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    record = logging.LogRecord("exporter.collect", logging.INFO, __file__, 1, msg, (), exc_info)
    record.__dict__.update(extra)
    record.created = 1700000000.5
    return LogfmtFormatter().format(record)


def test_standard_fields_come_first() -> None:
    assert _record() == (
        "ts=2023-11-14T22:13:20.500+00:00 level=info logger=exporter.collect msg=polled"
    )


def test_extra_fields_are_rendered_in_order() -> None:
    line = _record(project="gh/acme/api", runs=3, ok=True)

    assert line.endswith(" msg=polled project=gh/acme/api runs=3 ok=True")


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("plain", "plain"),
        ("two words", '"two words"'),
        ("a=b", '"a=b"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("line\nbreak", '"line\\nbreak"'),
        ("carriage\rreturn", '"carriage\\rreturn"'),
        ("tab\there", '"tab\\there"'),
        ("", '""'),
        (None, "None"),
    ],
)
def test_values_are_quoted_and_escaped(value: object, rendered: str) -> None:
    assert _record(field=value).endswith(f" field={rendered}")


def test_message_with_spaces_is_quoted() -> None:
    assert ' msg="poll failed" ' in _record("poll failed", project="x")


def test_exception_is_one_line_without_traceback() -> None:
    try:
        raise RuntimeError("upstream said no\nsecond line")
    except RuntimeError as err:
        line = _record("poll failed", exc=err)

    assert "\n" not in line
    assert "Traceback" not in line
    assert line.endswith(' error="RuntimeError: upstream said no\\nsecond line"')


def test_logger_exception_goes_through_the_formatter(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("exporter.test")
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logger.exception("crashed", extra={"project": "gh/acme/api"})
    [record] = caplog.records
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError

    line = LogfmtFormatter().format(record)

    assert line.endswith(' project=gh/acme/api error="ZeroDivisionError: division by zero"')
