"""Grafana against a real local HTTP server speaking its annotations route: what arrives, and whether a failure
says a retry can help."""

import pytest

from alerting.channels.base import DeliveryError
from alerting.channels.grafana import GrafanaChannel
from tests.alerting.helpers import alert
from tests.alerting.receivers import annotations

channel = GrafanaChannel()  # not `grafana`: that is the receiver fixture


def test_grafana_gets_a_tagged_annotation_with_the_token(channels, grafana):
    grafana_alert = alert()
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
        channel.send(alert())
    assert caught.value.retry_may_help is transient


def test_a_hanging_grafana_times_out_as_transient(channels, grafana):
    channels.CIO_ALERT_CHANNEL_TIMEOUT_S = 0.3
    grafana.hang_s = 5
    with pytest.raises(DeliveryError) as caught:
        channel.send(alert())
    assert caught.value.retry_may_help
