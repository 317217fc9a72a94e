"""One delivery attempt at a time, recorded in the audit store: delivered, retried with backoff, refused for
good, dead after the last attempt, skipped where a channel is not configured."""

import base64
import json
from datetime import UTC, datetime

import pytest
import redis

from alerting import delivery
from alerting.bridge import genuinely_delivered
from alerting.delivery import DEAD_LETTER, DELIVERED, FAILED, RETRYING, SKIPPED, RetryLaterError
from alerting.dispatch import dispatch
from audit.records import REFUSED, AlertRecord
from audit.store import get_store
from tests.alerting.alerts import alert

pytestmark = pytest.mark.django_db(transaction=True)


def outcomes(alert_id: str) -> list[tuple[str, int, str]]:
    return [(e.channel, e.attempt, e.outcome) for e in get_store().alert_events([alert_id])]


def test_each_channel_delivers_and_each_attempt_is_recorded(channels, smtp, grafana, collector):
    sent = alert()
    for channel in ("email", "grafana", "otel"):
        assert delivery.deliver(sent, channel, attempt=1) == DELIVERED
    assert sorted(outcomes(sent.alert_id)) == [
        ("email", 1, DELIVERED),
        ("grafana", 1, DELIVERED),
        ("otel", 1, DELIVERED),
    ]
    assert smtp.subjects() and grafana.requests and collector.requests


def test_transient_failures_back_off_then_die_as_a_dead_letter(channels, grafana):
    channels.CIO_ALERT_MAX_ATTEMPTS = 3
    grafana.status = 503
    sent = alert()
    waits = []
    for attempt in (1, 2):
        with pytest.raises(RetryLaterError) as caught:
            delivery.deliver(sent, "grafana", attempt)
        waits.append(caught.value.countdown_s)
    assert waits == [0.2, 0.4]  # exponential from CIO_ALERT_RETRY_BACKOFF_S
    assert delivery.deliver(sent, "grafana", 3) == DEAD_LETTER
    assert outcomes(sent.alert_id) == [("grafana", 1, RETRYING), ("grafana", 2, RETRYING), ("grafana", 3, DEAD_LETTER)]
    [last] = [e for e in get_store().alert_events([sent.alert_id]) if e.outcome == DEAD_LETTER]
    assert last.detail["error"] == "Grafana answered HTTP 503" and last.detail["retry_may_help"] is True


def test_a_permanent_refusal_is_not_retried(channels, grafana):
    grafana.status = 401
    sent = alert()
    assert delivery.deliver(sent, "grafana", 1) == FAILED
    assert outcomes(sent.alert_id) == [("grafana", 1, FAILED)]


def test_an_unconfigured_channel_is_recorded_as_skipped(channels):
    channels.CIO_GRAFANA_URL = ""
    sent = alert()
    assert delivery.deliver(sent, "grafana", 1) == SKIPPED
    assert outcomes(sent.alert_id) == [("grafana", 1, SKIPPED)]


def test_a_second_delivery_of_the_same_attempt_records_once(channels, smtp):
    sent = alert()
    delivery.deliver(sent, "email", 1)
    delivery.deliver(sent, "email", 1)  # Celery delivered the task twice (acks late, a worker restart)
    assert outcomes(sent.alert_id) == [("email", 1, DELIVERED)]


def test_only_a_task_of_the_dispatchers_own_delivers_and_it_sends_what_the_store_kept(channels, smtp, broker):
    """Issue 17: the broker's identity can read and add tasks. A task carries ids and a nonce; the worker delivers
    only one matching a dispatch record, with the stored text; anything else is refused and recorded."""
    sent = alert()
    now = datetime.now(UTC)
    get_store().insert_alert(
        AlertRecord(sent.alert_id, sent.ts, "critical", sent.source, sent.title, sent.detail, sent.trace_id, now)
    )
    assert dispatch(sent, only=["email"]) == ["email"]
    queue = redis.Redis.from_url(broker)
    [message] = queue.lrange("alerts", 0, -1)  # what the broker's identity sees: ids and the nonce, no text
    queue.close()
    args = json.loads(base64.b64decode(json.loads(message)["body"]))[0]
    assert args[:3] == [sent.alert_id, "email", 0] and len(args) == 4
    nonce = args[3]
    assert nonce not in json.dumps([e.detail for e in get_store().alert_events([sent.alert_id])])  # hash only

    forged = [
        (sent.alert_id, "email", 0, "a-guess"),
        (sent.alert_id, "grafana", 0, nonce),  # another channel
        (sent.alert_id, "email", 1, nonce),  # another round
        ({**sent.model_dump(mode="json"), "title": "all clear"}, "email", 0, None),  # the old shape, own text
    ]
    for args in forged:
        assert delivery.deliver_dispatched(*args, attempt=1) == REFUSED
    assert smtp.subjects() == []
    assert not genuinely_delivered(get_store().alert_events([sent.alert_id]))
    assert delivery.deliver_dispatched(sent.alert_id, "email", 0, nonce, attempt=1) == DELIVERED
    assert smtp.subjects() == ["[CRITICAL] gate lost Redis (gate:g1)"]
    events = get_store().alert_events([sent.alert_id])
    assert genuinely_delivered(events)
    assert len([e for e in events if e.kind == REFUSED]) == 4
