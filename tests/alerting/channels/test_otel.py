"""OpenTelemetry against a real local OTLP/HTTP receiver: the log record, the span event and the counter that
arrive, and a receiver that is away being transient."""

import pytest

from alerting.channels.base import DeliveryError
from alerting.channels.otel import OtelChannel
from tests.alerting.helpers import TRACE, alert
from tests.alerting.receivers import otlp

otel = OtelChannel()


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
