"""Email against a real local SMTP server: what arrives, and whether a failure says a retry can help."""

import pytest

from alerting.channels.base import DeliveryError
from alerting.channels.email import EmailChannel, EmailDeliveryError
from tests.alerting.helpers import TRACE, alert

email = EmailChannel()


def test_email_arrives_with_what_a_person_needs(channels, smtp):
    email.send(alert())
    [mail] = smtp.received
    assert mail.recipients == ["oncall@example.test"] and mail.subject == "[CRITICAL] gate lost Redis (gate:g1)"
    assert f"trace id: {TRACE}" in mail.body and "lost_s: 3.5" in mail.body
    assert mail.headers["X-CIO-Alert-Id"] == "a" * 32


@pytest.mark.parametrize(("reply", "transient"), [("451 try again later", True), ("550 mailbox unavailable", False)])
def test_email_refusals_say_whether_to_retry(channels, smtp, reply, transient):
    smtp.reply = reply
    with pytest.raises(EmailDeliveryError) as caught:
        email.send(alert())
    assert caught.value.retry_may_help is transient


def test_email_to_a_server_that_is_down_is_transient(channels, smtp):
    smtp.stop()
    with pytest.raises(DeliveryError) as caught:
        email.send(alert())
    assert caught.value.retry_may_help
