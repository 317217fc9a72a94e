"""The Intent accepts what today's fleet sends, and says exactly what is wrong with what it cannot accept."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from cio_kernel.contracts.intent import Intent
from cio_kernel.contracts.signal import CioStamp, build_signal_payload, cio_stamp_json
from tests.factories import intent_body

EPOCH = 1_764_000_000  # 2025-11-24T16:00:00Z


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (EPOCH, datetime.fromtimestamp(EPOCH, UTC)),
        (float(EPOCH) + 0.25, datetime.fromtimestamp(EPOCH + 0.25, UTC)),
        (EPOCH * 1000 + 250, datetime.fromtimestamp(EPOCH + 0.25, UTC)),  # milliseconds
        (str(EPOCH), datetime.fromtimestamp(EPOCH, UTC)),
        ("2025-11-24T16:00:00Z", datetime.fromtimestamp(EPOCH, UTC)),
        ("2025-11-24T18:00:00+02:00", datetime.fromtimestamp(EPOCH, UTC)),
        ("2025-11-24T16:00:00", datetime.fromtimestamp(EPOCH, UTC)),  # naive is read as UTC
    ],
)
def test_timestamps_the_fleet_sends(sent, expected):
    assert Intent.model_validate(intent_body(timestamp=sent)).timestamp == expected


@pytest.mark.parametrize("sent", ["yesterday", "", True, -5, 0, 5e12 * 1000, float("nan"), [EPOCH]])
def test_unusable_timestamps_are_field_errors_never_now(sent):
    with pytest.raises(ValidationError) as info:
        Intent.model_validate(intent_body(timestamp=sent))
    assert [e["loc"][0] for e in info.value.errors()] == ["timestamp"]


def test_missing_timestamp_stays_missing():
    assert Intent.model_validate(intent_body(timestamp=...)).timestamp is None


def test_ta_bot_zero_quantity_and_extra_fields_are_accepted():
    intent = Intent.model_validate(intent_body(quantity=0.0, confidence_score=0.66, _otel_trace_headers={"a": "b"}))
    assert intent.quantity == 0.0
    assert intent.model_extra == {"confidence_score": 0.66, "_otel_trace_headers": {"a": "b"}}


def test_nulls_are_allowed_for_optional_fields():
    optional = ["id", "strategy_mode", "order_type", "time_in_force", "strength", "timeframe", "meta", "metadata"]
    intent = Intent.model_validate(intent_body(**dict.fromkeys(optional)))
    assert intent.effective_order_type == "market" and intent.effective_strategy_mode == "deterministic"


def test_every_missing_required_field_is_reported():
    with pytest.raises(ValidationError) as info:
        Intent.model_validate({})
    missing = {e["loc"][0] for e in info.value.errors() if e["type"] == "missing"}
    assert missing == {
        "strategy_id",
        "symbol",
        "action",
        "confidence",
        "price",
        "quantity",
        "current_price",
        "source",
        "strategy",
    }


def test_promoted_signal_changes_only_what_the_engine_needs():
    intent = Intent.model_validate(intent_body(timestamp=EPOCH, meta={"bot": 1}, strength=None, extra_field="x"))
    dump = intent.model_dump(mode="json", exclude_none=True)
    stamp = cio_stamp_json("d1", 3, datetime.now(UTC), intent.source)
    CioStamp.model_validate(stamp)
    signal = build_signal_payload(dict(dump), stamp, "petrosa-cio", "00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    changed = {k for k in signal if signal.get(k) != dump.get(k)}
    assert changed == {"source", "meta", "_otel_trace_context", "decision_id"}
    assert signal["decision_id"] == "d1" == signal["meta"]["cio"]["decision_id"]
    assert signal["meta"]["bot"] == 1 and signal["meta"]["cio"]["decision_id"] == "d1"
    assert signal["meta"]["cio"]["original_source"] == "realtime-strategies"
    assert "strength" not in signal and signal["extra_field"] == "x"
