"""Email through Django's mail settings (SMTP). Configured by `CIO_ALERT_EMAIL_TO` (comma-separated) and the
`CIO_SMTP_*` settings (docs/alerting.md)."""

import smtplib

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from alerting.channels.base import Channel, DeliveryError, NotConfiguredError, body, summary
from cio_kernel.contracts.alert import Alert

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


class EmailDeliveryError(DeliveryError):
    pass


class EmailChannel(Channel):
    name = "email"

    def configured(self) -> bool:
        return bool(settings.CIO_ALERT_EMAIL_TO)

    def send(self, alert: Alert, timeout_s: float | None = None) -> None:
        if not self.configured():
            raise NotConfiguredError("no recipients (CIO_ALERT_EMAIL_TO)")
        # SMTP always (Django's EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER/PASSWORD, EMAIL_USE_TLS/SSL), whatever
        # EMAIL_BACKEND says: an alert must reach a mail server, never a console or an in-memory outbox.
        connection = get_connection(SMTP_BACKEND, timeout=timeout_s or settings.CIO_ALERT_CHANNEL_TIMEOUT_S)
        message = EmailMessage(
            subject=summary(alert),
            body=body(alert),
            from_email=settings.CIO_ALERT_EMAIL_FROM,
            to=list(settings.CIO_ALERT_EMAIL_TO),
            headers={"X-CIO-Alert-Id": alert.alert_id, "X-CIO-Severity": alert.severity.value},
            connection=connection,
        )
        try:
            message.send()
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPAuthenticationError) as exc:
            raise EmailDeliveryError(f"refused: {exc!r}", retry_may_help=False) from exc
        except smtplib.SMTPResponseException as exc:  # 4xx: try later; 5xx: the server means it
            raise EmailDeliveryError(f"SMTP {exc.smtp_code}", retry_may_help=400 <= exc.smtp_code < 500) from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise EmailDeliveryError(f"SMTP server unreachable: {exc!r}", retry_may_help=True) from exc
