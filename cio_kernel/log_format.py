"""Log lines go through the same redaction as audit records, whatever a caller passes in (every process), and
lose any secret this process was given in its environment (`redaction.process_scrubber`)."""

import logging

from cio_kernel.redaction import process_scrubber


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return process_scrubber().text(super().format(record))
