"""How the canary raises the alarm without the cluster: straight to an SMTP server and to an HTTP webhook (a
pager, a chat room), never through NATS, Celery or the control plane. Its own deduplication, kept in a small
state file, sends each problem once per `realert_s` during a long outage, and one "recovered" message when
everything is healthy again."""

import json
import smtplib
import time
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from canary.checks import Problem
from cio_kernel.redaction import redact_text


@dataclass(frozen=True)
class AlarmSettings:
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = False
    mail_from: str = "petrosa-cio-canary@localhost"
    mail_to: tuple[str, ...] = ()
    webhook_url: str | None = field(default=None, repr=False)  # a webhook URL often carries its own secret
    state_file: Path = Path(".cio/canary-state.json")
    realert_s: float = 3600.0
    timeout_s: float = 10.0

    @property
    def channels(self) -> list[str]:
        found = []
        if self.smtp_host and self.mail_to:
            found.append("email")
        if self.webhook_url:
            found.append("webhook")
        return found


@dataclass
class Alarm:
    settings: AlarmSettings
    clock: Any = time.time

    def _state(self) -> dict[str, Any]:
        try:
            return json.loads(self.settings.state_file.read_text())
        except (OSError, ValueError):
            return {"alarmed": {}}

    def _save(self, state: dict[str, Any]) -> None:
        path = self.settings.state_file
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        temporary.replace(path)

    def handle(self, problems: list[Problem], status: str) -> tuple[list[str], list[str]]:
        """Alarm on problems not alarmed within `realert_s`, or announce a recovery. Returns (channels that took
        the message, channels that failed); both empty when nothing needed sending."""
        state, now = self._state(), self.clock()
        alarmed: dict[str, float] = state.get("alarmed", {})
        if not problems:
            if not alarmed:
                return [], []
            sent, failed = self._send("CANARY RECOVERED: " + status, status + "\n\nEvery check passes again.")
            if sent:
                self._save({"alarmed": {}})
            return sent, failed
        due = [p for p in problems if now - alarmed.get(p.key, float("-inf")) >= self.settings.realert_s]
        if not due:
            return [], []
        body = "\n".join(f"- {p.key}: {p.message}" for p in problems)
        sent, failed = self._send(f"CANARY ALARM: {problems[0].message}", f"{status}\n\n{body}\n\nSee docs/canary.md.")
        if sent:
            for problem in due:
                alarmed[problem.key] = now
            self._save({"alarmed": alarmed})
        return sent, failed

    def _send(self, subject: str, text: str) -> tuple[list[str], list[str]]:
        sent, failed = [], []
        for channel, send in (("email", self._email), ("webhook", self._webhook)):
            if channel not in self.settings.channels:
                continue
            try:
                send(subject, text)
                sent.append(channel)
            except Exception as exc:
                failed.append(f"{channel}: {redact_text(repr(exc))[:200]}")
        return sent, failed

    def _email(self, subject: str, text: str) -> None:
        s = self.settings
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = subject[:200], s.mail_from, ", ".join(s.mail_to)
        message.set_content(text)
        with smtplib.SMTP(s.smtp_host or "", s.smtp_port, timeout=s.timeout_s) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password or "")
            smtp.send_message(message)

    def _webhook(self, subject: str, text: str) -> None:
        body = json.dumps({"text": f"{subject}\n{text}", "title": subject, "source": "petrosa-cio-canary"}).encode()
        request = urllib.request.Request(  # noqa: S310 (a configured URL)
            self.settings.webhook_url or "", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self.settings.timeout_s) as response:  # noqa: S310
            if response.status >= 300:
                raise RuntimeError(f"webhook answered HTTP {response.status}")
