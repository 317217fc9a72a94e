"""`make up`'s local Grafana and OpenTelemetry stand-ins (deploy/alert_receivers.py) take what the real channels
send, with the channel settings `make up` gives its alerting processes (deploy/devstack.py), so all three channels
deliver under `make up` rather than being recorded as skipped."""

import argparse

import orjson
import pytest

from alerting.channels.grafana import GrafanaChannel
from alerting.channels.otel import OtelChannel
from deploy.alert_receivers import AlertReceiver, summary
from deploy.devstack import alert_channel_env
from tests.alerting.helpers import alert


@pytest.fixture
def standins(tmp_path, settings, monkeypatch):
    grafana = AlertReceiver("grafana", folder=tmp_path, echo=True).start()
    otlp = AlertReceiver("otlp", folder=tmp_path, echo=True).start()
    for name in ("CIO_GRAFANA_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    env = alert_channel_env(argparse.Namespace(grafana_port=grafana.port, otlp_port=otlp.port))
    settings.CIO_GRAFANA_URL, settings.CIO_GRAFANA_TOKEN = env.pop("CIO_GRAFANA_URL"), ""
    settings.CIO_ALERT_CHANNEL_TIMEOUT_S = 2.0
    for name, value in env.items():  # per signal, so tracing stays off in the processes that get them
        monkeypatch.setenv(name, value)
    yield grafana, otlp
    grafana.stop()
    otlp.stop()


def test_both_channels_deliver_to_the_stand_ins_which_print_and_keep_each_delivery(standins, tmp_path, capsys):
    grafana, otlp = standins
    assert GrafanaChannel().configured() and OtelChannel().configured()
    GrafanaChannel().send(alert())
    OtelChannel().send(alert())
    [annotation] = grafana.received
    assert annotation["tags"] == ["petrosa-cio", "severity:critical", "source:gate:g1"]
    assert "gate lost Redis" in annotation["text"]
    kinds = {delivery["kind"]: delivery["items"] for delivery in otlp.received}
    logs = ["[CRITICAL] gate lost Redis (gate:g1)"]
    assert kinds == {"spans": ["cio.alert"], "logs": logs, "metrics": ["cio.alerts"]}
    kept = [orjson.loads(line) for line in (tmp_path / "otlp.jsonl").read_bytes().splitlines()]
    assert kept == otlp.received
    assert orjson.loads((tmp_path / "grafana.jsonl").read_bytes()) == annotation
    printed = capsys.readouterr().out
    assert f"grafana: {summary(annotation)}" in printed and "otlp: 1 logs: [CRITICAL] gate lost Redis" in printed


def test_the_stand_ins_refuse_what_is_not_their_protocol(standins):
    grafana, otlp = standins
    assert grafana.take("/api/dashboards/db", b"{}")[0] == 404
    assert grafana.take("/api/annotations", b"not json")[0] == 400
    assert otlp.take("/v1/traces", b"\xff\xff\xff")[0] == 400
    assert otlp.take("/v1/profiles", b"")[0] == 404
    assert grafana.received == [] and otlp.received == []
