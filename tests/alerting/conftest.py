"""Alerting fixtures: the three channel stand-ins running, and settings pointing every channel at them."""

from collections.abc import Iterator
from typing import Any

import pytest

from deploy.mail_catcher import MailCatcher
from tests.alerting.receivers import Receiver


@pytest.fixture
def smtp() -> Iterator[MailCatcher]:
    catcher = MailCatcher().start()
    yield catcher
    catcher.stop()


@pytest.fixture
def grafana() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def collector() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def channels(settings: Any, smtp: MailCatcher, grafana: Receiver, collector: Receiver, monkeypatch: Any) -> Any:
    """Every channel configured, each against its own local server."""
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.CIO_ALERT_EMAIL_TO = ["oncall@example.test"]
    settings.CIO_GRAFANA_URL, settings.CIO_GRAFANA_TOKEN = grafana.url, "glsa_test_token"
    settings.CIO_ALERT_CHANNEL_TIMEOUT_S = 2.0
    settings.CIO_ALERT_RETRY_BACKOFF_S = 0.2
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    return settings


@pytest.fixture(autouse=True)
def _django_test_defaults(fresh_throttles: None, fast_password_hashing: None) -> None:
    """Each test starts with no throttle counts and hashes its users' passwords fast (tests/plugins)."""
