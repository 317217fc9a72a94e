"""A local SMTP server (aiosmtpd) that takes every message and keeps it: the stand-in for a mail relay in
`make up` (it prints each one and appends it to a folder) and in the tests (which read what it received).
`reply` lets a test make it refuse ("550 …") or defer ("451 …") instead."""

import argparse
import email
import email.policy
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from cio_kernel.log_format import configure_logging

logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every connection at INFO


@dataclass
class Received:
    sender: str
    recipients: list[str]
    subject: str
    body: str
    headers: dict[str, str]


@dataclass
class MailCatcher:
    host: str = "127.0.0.1"
    port: int = 0
    folder: Path | None = None
    echo: bool = False
    reply: str | None = None  # None: accept ("250 OK"); otherwise this SMTP reply to DATA
    received: list[Received] = field(default_factory=list)
    _controller: Controller | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reply is not None:
            return self.reply
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        item = Received(
            sender=envelope.mail_from,
            recipients=list(envelope.rcpt_tos),
            subject=" ".join(str(message["subject"]).split()),  # unfolded (RFC 5322 folds long subjects)
            body=body.get_content() if body is not None else "",
            headers={k: str(v) for k, v in message.items()},
        )
        with self._lock:
            self.received.append(item)
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / f"{time.time_ns()}.eml").write_bytes(envelope.content)
        if self.echo:
            print(f"mail to {', '.join(item.recipients)}: {item.subject}", flush=True)
        return "250 OK"

    def start(self) -> "MailCatcher":
        from deploy.servers import free_port

        self.port = self.port or free_port()
        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def subjects(self) -> list[str]:
        with self._lock:
            return [m.subject for m in self.received]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("CIO_DEV_SMTP_PORT", "18025")))
    parser.add_argument("--folder", type=Path, default=None, help="also keep every message here (.eml files)")
    args = parser.parse_args()
    catcher = MailCatcher(port=args.port, folder=args.folder, echo=True).start()
    print(f"mail catcher: SMTP on 127.0.0.1:{catcher.port}; messages in {args.folder or '(memory only)'}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    catcher.stop()


if __name__ == "__main__":
    configure_logging("mail-catcher")  # a timestamp on every line, text or JSON (docs/logging.md)
    main()
