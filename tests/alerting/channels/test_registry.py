"""The registry and the contract every channel keeps: a fixed unique name, `configured()`, and `send(alert,
timeout_s=None)` that delivers or raises `DeliveryError` (`NotConfiguredError` where it is not set up), within the
timeout it is given."""

import inspect
import socket
import time

import pytest

from alerting.channels import registry
from alerting.channels.base import Channel, DeliveryError, NotConfiguredError, Registry
from alerting.channels.email import EmailChannel
from tests.alerting.helpers import alert


def test_the_channels_are_registered_once_each_under_the_names_the_audit_store_records():
    # The names are in every delivery record and task: renaming one would orphan its history.
    assert registry.names() == ["email", "grafana", "otel"]
    assert [channel.name for channel in registry] == registry.names()
    for name in registry.names():
        assert name in registry and registry.get(name).name == name
    assert "email_direct" not in registry  # the bridge's own fallback, not a channel a task may name


def test_every_registered_channel_keeps_the_contract(channels):
    for channel in registry:
        assert isinstance(channel, Channel)
        assert isinstance(channel.name, str) and channel.name
        parameters = inspect.signature(channel.send).parameters
        assert list(parameters) == ["alert", "timeout_s"] and parameters["timeout_s"].default is None
        assert channel.configured() is True


def test_an_unconfigured_channel_says_so(settings, monkeypatch):
    settings.CIO_ALERT_EMAIL_TO, settings.CIO_GRAFANA_URL = [], ""
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)
    for channel in registry:
        assert channel.configured() is False
        with pytest.raises(NotConfiguredError):
            channel.send(alert())


def test_every_channel_gives_up_within_the_timeout_it_is_given(channels, grafana, collector, monkeypatch):
    """Servers that take the connection and never answer; the settings' timeout is far longer than the one given."""
    channels.CIO_ALERT_CHANNEL_TIMEOUT_S = 30.0
    grafana.hang_s = collector.hang_s = 30
    with socket.create_server(("127.0.0.1", 0)) as silent_smtp:  # never accepts: the SMTP greeting never comes
        channels.EMAIL_PORT = silent_smtp.getsockname()[1]
        for channel in registry:
            started = time.monotonic()
            with pytest.raises(DeliveryError) as caught:
                channel.send(alert(), timeout_s=0.3)
            assert caught.value.retry_may_help, channel.name
            assert time.monotonic() - started < 5, channel.name


def test_a_name_is_registered_once_and_only_channels_are():
    fresh = Registry()
    fresh.register(EmailChannel())
    with pytest.raises(ValueError, match="registered already"):
        fresh.register(EmailChannel())
    with pytest.raises(TypeError):
        fresh.register(object())  # type: ignore[arg-type]
    assert fresh.names() == ["email"]


def test_a_channel_that_does_not_implement_the_contract_cannot_be_made():
    class Half(Channel):
        name = "half"

        def configured(self) -> bool:
            return True

    with pytest.raises(TypeError, match="send"):
        Half()  # type: ignore[abstract]
