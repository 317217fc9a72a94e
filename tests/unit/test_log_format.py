"""The one log format (cio_kernel.log_format): a timestamp on every line, JSON lines on request, nothing secret.

Real processes writing it, in both formats: tests/e2e/test_log_lines.py."""

import io
import logging
import re
import sys

import orjson
import pytest

from cio_kernel.log_format import (
    RedactingFormatter,
    StampedLines,
    json_lines,
    message_of,
    relay_line,
    timestamp,
    unstamped,
)
from cio_site.log_component import process_name

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")
SECRET = "hunter2-s3cret"


def _record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError(f"connect failed: password={SECRET}")
        except RuntimeError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("gate.runtime", logging.WARNING, __file__, 1, msg, args or None, exc_info)
    record.__dict__.update(extra)
    return record


def test_the_timestamp_is_iso_8601_utc_with_milliseconds() -> None:
    assert timestamp(0.5) == "1970-01-01T00:00:00.500Z"


def test_a_json_line_has_the_fields_and_no_secret_from_arguments_extras_or_tracebacks() -> None:
    record = _record("token=%s for %s", SECRET, "url", exc=True, password=SECRET, api_key=SECRET)
    line = RedactingFormatter("gate[g1]", json=True).format(record)
    assert "\n" not in line and SECRET not in line
    parsed = orjson.loads(line)
    assert set(parsed) == {"ts", "level", "logger", "component", "message", "exc"}  # extras never written
    assert STAMP.match(parsed["ts"] + " ")
    assert (parsed["level"], parsed["logger"], parsed["component"]) == ("WARNING", "gate.runtime", "gate[g1]")
    assert parsed["message"] == 'token="[REDACTED]" for url'
    assert "RuntimeError" in parsed["exc"] and "[REDACTED]" in parsed["exc"]


def test_a_secret_json_would_escape_is_redacted_before_encoding() -> None:
    line = RedactingFormatter("web", json=True).format(_record('{"password": "%s"}', SECRET))
    assert SECRET not in line and orjson.loads(line)["message"] == '{"password": "[REDACTED]"}'


def test_every_text_line_of_a_record_starts_with_its_stamp() -> None:
    text = RedactingFormatter("web", json=False).format(_record("two\nlines", exc=True))
    lines = text.split("\n")
    assert len(lines) > 3 and all(STAMP.match(line) for line in lines)
    assert lines[0].endswith(" web WARNING gate.runtime: two") and SECRET not in text


def test_printed_lines_are_stamped_one_by_one_and_a_partial_line_waits() -> None:
    target = io.StringIO()
    stream = StampedLines(target, RedactingFormatter("canary", json=False), "stdout", logging.INFO)
    stream.write("CANARY OK gate=g1\nhalf")
    assert target.getvalue().count("\n") == 1 and "half" not in target.getvalue()
    stream.write(" a line\n")
    stream.write(f"password={SECRET}\n")
    lines = target.getvalue().splitlines()
    assert [STAMP.sub("", line) for line in lines] == ["CANARY OK gate=g1", "half a line", 'password="[REDACTED]"']
    assert all(STAMP.match(line) for line in lines)
    assert unstamped(stream) is target  # what a log handler writes to: stamped once, not twice


def test_printed_lines_as_json() -> None:
    target = io.StringIO()
    StampedLines(target, RedactingFormatter("mail-catcher", json=True), "stdout", logging.INFO).write("mail to x\n")
    parsed = orjson.loads(target.getvalue())
    assert (parsed["logger"], parsed["component"], parsed["message"]) == ("stdout", "mail-catcher", "mail to x")


def test_the_local_stack_relays_a_childs_line_stamped_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIO_LOG_FORMAT", raising=False)
    assert not json_lines()
    ours = "2026-12-06T15:00:00.123Z bot: CONSERVATIVE MODE"
    assert relay_line("bot", ours + "\n", 0.0) == "2026-12-06T15:00:00.123Z [  bot] bot: CONSERVATIVE MODE"
    assert message_of(ours) == "bot: CONSERVATIVE MODE"
    nats = f"[41] 2026/12/06 15:00:00.123456 [INF] Server is ready nats://u:{SECRET}@h"
    assert relay_line("nats", nats, 0.5) == f"1970-01-01T00:00:00.500Z [ nats] {nats.replace(SECRET, '[REDACTED]')}"

    monkeypatch.setenv("CIO_LOG_FORMAT", "json")
    child = RedactingFormatter("demo-bot", json=True).format(_record("hello"))
    assert orjson.loads(relay_line("bot", child, 0.0)) == {**orjson.loads(child), "process": "bot"}
    assert message_of(child) == "hello"
    wrapped = orjson.loads(relay_line("nats", nats, 0.5))
    assert wrapped["ts"] == "1970-01-01T00:00:00.500Z" and wrapped["process"] == "nats"
    assert SECRET not in wrapped["message"] and wrapped["message"].endswith(
        "[INF] Server is ready nats://u:[REDACTED]@h"
    )


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["manage.py", "audit_ingest", "--stats-every", "30"], "audit_ingest"),
        (["/v/lib/celery/__main__.py", "-A", "cio_site", "worker", "-P", "threads"], "worker"),
        (["/v/bin/celery", "-A", "cio_site", "beat", "-l", "INFO"], "beat"),
        (["/v/lib/celery/__main__.py", "-A", "cio_site", "inspect", "ping"], None),
        (["/v/lib/uvicorn/__main__.py", "cio_site.asgi:application", "--port", "8000"], "web"),
        (["/v/bin/pytest", "tests/unit"], None),  # a test run: its streams are left alone
    ],
)
def test_the_control_planes_processes_are_named_from_their_command(argv: list[str], name: str | None) -> None:
    assert process_name(argv) == name
