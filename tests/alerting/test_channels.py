"""Each channel against a real local server: what arrives, and whether a failure says a retry can help."""

import pytest

from alerting.channels import email, grafana, otel
from alerting.channels.base import DeliveryError, NotConfiguredError
from tests.alerting.alerts import TRACE, alert
from tests.alerting.receivers import annotations, otlp


def test_email_arrives_with_what_a_person_needs(channels, smtp):
    email.send(alert())
    [mail] = smtp.received
    assert mail.recipients == ["oncall@example.test"] and mail.subject == "[CRITICAL] gate lost Redis (gate:g1)"
    assert f"trace id: {TRACE}" in mail.body and "lost_s: 3.5" in mail.body
    assert mail.headers["X-CIO-Alert-Id"] == "a" * 32


@pytest.mark.parametrize(("reply", "transient"), [("451 try again later", True), ("550 mailbox unavailable", False)])
def test_email_refusals_say_whether_to_retry(channels, smtp, reply, transient):
    smtp.reply = reply
    with pytest.raises(email.EmailDeliveryError) as caught:
        email.send(alert())
    assert caught.value.retry_may_help is transient


def test_email_to_a_server_that_is_down_is_transient(channels, smtp):
    smtp.stop()
    with pytest.raises(DeliveryError) as caught:
        email.send(alert())
    assert caught.value.retry_may_help


def test_grafana_gets_a_tagged_annotation_with_the_token(channels, grafana):
    grafana_alert = alert()
    from alerting.channels import grafana as channel

    channel.send(grafana_alert)
    [annotation] = annotations(grafana)
    assert annotation["time"] == int(grafana_alert.ts.timestamp() * 1000)
    assert annotation["tags"] == ["petrosa-cio", "severity:critical", "source:gate:g1"]
    assert "gate lost Redis" in annotation["text"]
    [(_, headers, _)] = grafana.requests
    assert headers["Authorization"] == "Bearer glsa_test_token"


@pytest.mark.parametrize(("status", "transient"), [(500, True), (503, True), (429, True), (401, False), (400, False)])
def test_grafana_errors_say_whether_to_retry(channels, grafana, status, transient):
    grafana.status = status
    with pytest.raises(DeliveryError) as caught:
        globals()["grafana"].send(alert())
    assert caught.value.retry_may_help is transient


def test_a_hanging_grafana_times_out_as_transient(channels, grafana):
    channels.CIO_ALERT_CHANNEL_TIMEOUT_S = 0.3
    grafana.hang_s = 5
    with pytest.raises(DeliveryError) as caught:
        globals()["grafana"].send(alert())
    assert caught.value.retry_may_help


def test_otel_exports_a_log_record_a_span_event_and_a_counter(channels, collector):
    otel.send(alert())
    received = otlp(collector)
    [span] = received["spans"]
    assert span.trace_id.hex() == TRACE  # the alert joins the trace it is about
    [event] = span.events
    attrs = {a.key: a.value for a in event.attributes}
    assert attrs["cio.alert.title"].string_value == "gate lost Redis"
    assert attrs["cio.alert.detail.lost_s"].double_value == 3.5
    [record] = received["logs"]
    assert record.body.string_value == "[CRITICAL] gate lost Redis (gate:g1)" and record.severity_text == "CRITICAL"
    assert record.trace_id.hex() == TRACE
    assert [m.name for m in received["metrics"]] == ["cio.alerts"]
    [point] = received["metrics"][0].sum.data_points
    assert point.as_int == 1


def test_otel_receiver_down_is_transient(channels, collector):
    collector.stop()
    channels.CIO_ALERT_CHANNEL_TIMEOUT_S = 0.5
    with pytest.raises(DeliveryError) as caught:
        otel.send(alert())
    assert caught.value.retry_may_help


def test_an_unconfigured_channel_says_so(settings, monkeypatch):
    settings.CIO_ALERT_EMAIL_TO, settings.CIO_GRAFANA_URL = [], ""
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)
    for channel in (email, grafana, otel):
        with pytest.raises(NotConfiguredError):
            channel.send(alert())
