"""Every process's log lines (docs/logging.md): one format, a timestamp on every line, redacted, text or JSON.

`CIO_LOG_FORMAT=json` makes every line a JSON object: `ts` (ISO 8601, UTC, milliseconds), `level`, `logger`,
`component` (which process), `message`, and `exc` (the traceback) when there is one. The default, `text`, is
`<ts> <component> <LEVEL> <logger>: <message>`, every line of a traceback included. Only these fields are written:
a record's `extra` attributes never reach a line, so nothing a caller attaches can leak through them.

Lines go through the same redaction as audit records, whatever a caller passes in, and lose any secret this
process was given in its environment (`redaction.process_scrubber`); in JSON mode each field is redacted before
it is encoded, so an escaped quote cannot hide a secret from the scrubber.

`configure_logging` is what a process calls first: the root logger on stderr, and `print` and third-party writes
(Celery's banner on `sys.__stdout__`, a management command's output) stamped line by line too (`StampedLines`).
The kernel is the lowest layer, so the gate, the canary, the Django processes and the local stack share it.
"""

import io
import logging
import os
import re
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import TextIO

import orjson

from cio_kernel.redaction import process_scrubber

LOG_FORMAT_ENV = "CIO_LOG_FORMAT"
_TEXT_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


def json_lines() -> bool:
    """Whether this process writes JSON lines (`CIO_LOG_FORMAT=json`); anything but `json` is the text format."""
    return os.environ.get(LOG_FORMAT_ENV, "text").strip().lower() == "json"


def timestamp(created: float) -> str:
    """ISO 8601 in UTC with milliseconds: `2026-12-06T15:50:01.123Z`."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RedactingFormatter(logging.Formatter):
    """One line per record (text: one per line of the record, each stamped), in the format the process chose."""

    def __init__(self, component: str = "", json: bool | None = None) -> None:
        super().__init__()
        self.component = component
        self.json = json_lines() if json is None else json

    def format(self, record: logging.LogRecord) -> str:
        scrub = process_scrubber().text
        message = scrub(record.getMessage())
        exc = None
        if record.exc_info:
            exc = scrub(self.formatException(record.exc_info))
        elif record.exc_text:
            exc = scrub(record.exc_text)
        if record.stack_info:
            exc = "\n".join(filter(None, (exc, scrub(self.formatStack(record.stack_info)))))
        ts = timestamp(record.created)
        if self.json:
            return json_line(ts, record.levelname, record.name, self.component, message, exc)
        if getattr(record, "plain_line", False):  # a printed line: its own words, stamped
            return f"{ts} {message}"
        head = f"{ts} {self.component} {record.levelname} {record.name}: "
        text = message if exc is None else f"{message}\n{exc}"
        return "\n".join(head + line for line in text.split("\n"))


def json_line(
    ts: str, level: str, logger: str, component: str, message: str, exc: str | None = None, **more: str
) -> str:
    """The one shape of a JSON line (its fields already redacted)."""
    line = {"ts": ts, "level": level, "logger": logger, "component": component, "message": message}
    return orjson.dumps(line | ({"exc": exc} if exc else {}) | more).decode()


def unstamped(stream: TextIO) -> TextIO:
    return stream.target if isinstance(stream, StampedLines) else stream


class LogHandler(logging.StreamHandler):
    """A stream handler on this process's stderr as it was before `StampedLines` (formatted once, not twice)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = unstamped(sys.stderr)  # read at each record: a test's capture may have swapped stderr
        super().emit(record)


class StampedLines(io.TextIOBase):
    """A text stream whose every complete line is written to `target` as a log line of its own (`logger`, `level`).

    A partial line waits for its end, or for a flush (a prompt must show before its answer)."""

    def __init__(self, target: TextIO, formatter: logging.Formatter, logger: str, level: int) -> None:
        super().__init__()
        self.target = target
        self._formatter = formatter
        self._logger = logger
        self._level = level
        self._pending = ""
        self._lock = threading.Lock()  # threads print too (Celery's pool): a line is never cut by another

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8")

    def write(self, text: str) -> int:
        with self._lock:
            *lines, self._pending = (self._pending + text).split("\n")
            for line in lines:
                self._emit(line)
            if lines:
                self.target.flush()
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                line, self._pending = self._pending, ""
                self._emit(line)
            self.target.flush()

    def _emit(self, line: str) -> None:
        record = logging.LogRecord(self._logger, self._level, "", 0, line.rstrip("\r"), None, None)
        record.plain_line = True
        self.target.write(self._formatter.format(record) + "\n")


def configure_logging(component: str, level: str = "INFO") -> None:
    """This process's logging: the root logger on stderr, printed lines stamped, uncaught exceptions logged."""
    formatter = RedactingFormatter(component)
    handler = LogHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    stamp_streams(component, formatter)


def stamp_streams(component: str, formatter: logging.Formatter | None = None) -> None:
    """Every line written to stdout or stderr, through `sys` or its `__stdout__`/`__stderr__` (Celery writes its
    banner there), stamped as a log line of `component`; an uncaught exception logged as one record."""
    formatter = formatter or RedactingFormatter(component)
    stdout = StampedLines(unstamped(sys.stdout), formatter, "stdout", logging.INFO)
    stderr = StampedLines(unstamped(sys.stderr), formatter, "stderr", logging.ERROR)
    sys.stdout = sys.__stdout__ = stdout
    sys.stderr = sys.__stderr__ = stderr
    sys.excepthook = _log_uncaught
    logging.captureWarnings(True)  # a warning is one record, not several stamped lines of stderr


def _log_uncaught(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    logging.getLogger("uncaught").critical("the process stops on an uncaught exception", exc_info=(kind, error, trace))


def relay_line(name: str, line: str, created: float) -> str:
    """A child's output line as the local stack's supervisor writes it (deploy/devstack.py), stamped once.

    Text: `<ts> [name] <line>`, the child's own timestamp moved to the front when it has one. JSON: the child's
    JSON line with `process` added, or a line the child did not write as JSON (NATS, Valkey) wrapped as one."""
    line = line.rstrip("\r\n")
    if json_lines():
        try:
            parsed = orjson.loads(line)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict) and "ts" in parsed:  # redacted by the child, field by field
            return orjson.dumps({**parsed, "process": name}).decode()
    line = process_scrubber().text(line)  # NATS, Valkey: not ours, redacted here
    if json_lines():
        return json_line(timestamp(created), "INFO", "stdout", name, line, process=name)
    stamp = _TEXT_STAMP.match(line)
    if stamp is None:
        return f"{timestamp(created)} [{name:>5}] {line}"
    return f"{stamp.group(0)}[{name:>5}] {line[stamp.end() :]}"


def message_of(line: str) -> str:
    """What a stamped printed line says, its stamp taken off (the local stack reads its setup steps' output)."""
    if json_lines():
        try:
            parsed = orjson.loads(line)
        except orjson.JSONDecodeError:
            return line
        return str(parsed.get("message", line)) if isinstance(parsed, dict) else line
    stamp = _TEXT_STAMP.match(line)
    return line if stamp is None else line[stamp.end() :]
