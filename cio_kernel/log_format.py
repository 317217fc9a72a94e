"""Log lines go through the same redaction as audit records, whatever a caller passes in (every process)."""

import logging

from cio_kernel.redaction import redact_text


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))
