"""The intake limits on raw bytes: what a parsed intent would measure, found without parsing it."""

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gate.runtime.prescan import IntakeLimits, prescan
from tests.factories import live_intent_body

LIMITS = IntakeLimits(max_bytes=64 * 1024, max_depth=32, max_members=2048, max_string_bytes=16 * 1024)


def _measure(value: Any, depth: int = 0) -> tuple[int, int, int]:
    """(depth, members, longest string) of a parsed JSON value, the way the limits are documented: containers
    nest, members are keys, array elements (after the first, as commas) and containers, strings are measured in
    their JSON encoding without the quotes."""
    if isinstance(value, dict):
        measured = [_measure(v, depth + 1) for v in value.values()]
        keys = [len(orjson.dumps(k)) - 2 for k in value]
        members = 1 + len(value) + max(len(value) - 1, 0) + sum(m[1] for m in measured)
        return (
            max([depth + 1, *(m[0] for m in measured)]),
            members,
            max([0, *keys, *(m[2] for m in measured)]),
        )
    if isinstance(value, list):
        measured = [_measure(v, depth + 1) for v in value]
        members = 1 + max(len(value) - 1, 0) + sum(m[1] for m in measured)
        return max([depth + 1, *(m[0] for m in measured)]), members, max([0, *(m[2] for m in measured)])
    if isinstance(value, str):
        return depth, 0, len(orjson.dumps(value)) - 2
    return depth, 0, 0


def _nested(depth: int) -> bytes:
    return b'{"metadata":' + b'{"a":' * depth + b"{}" + b"}" * depth + b"}"


def test_a_normal_intent_passes():
    assert prescan(orjson.dumps(live_intent_body()), LIMITS) is None


@pytest.mark.parametrize("depth", [31, 300, 600])
def test_deep_nesting_is_refused_with_its_depth(depth):
    over = prescan(_nested(depth), LIMITS)
    assert over is not None and over.kind == "too_deep"
    assert over.message == f"payload nests {depth + 2} levels deep; the limit is 32"


def test_nesting_inside_strings_does_not_count():
    body = live_intent_body(rationale="{[" * 200 + '\\"{' * 50, note=":" * 3000)
    assert prescan(orjson.dumps(body), LIMITS) is None


def test_thousands_of_keys_are_refused():
    body = live_intent_body(metadata={f"k{i}": i for i in range(5000)})
    over = prescan(orjson.dumps(body), LIMITS)
    assert over is not None and over.kind == "too_many_members"


def test_a_long_string_is_refused_and_a_long_payload_of_short_strings_is_not():
    over = prescan(orjson.dumps(live_intent_body(rationale="api_key=" * 5000)), LIMITS)
    assert over is not None and over.kind == "string_too_long" and "40000 bytes" in over.message
    many = live_intent_body(metadata={f"k{i}": "x" * 900 for i in range(40)})
    assert prescan(orjson.dumps(many), LIMITS) is None


@pytest.mark.parametrize(
    "unit",
    [b'\\"', b'\\"{', b'\\"\\\n', b'\\"\\\\'],
    ids=["escaped quote", "and a bracket", "escaped newline", "and a backslash"],
)
def test_a_string_left_open_is_read_once(unit):
    # Each quote inside a string left open used to start a new search that read to the end of the payload:
    # 32 KB of `\"` held the gate for about 14 s. Read once, it is one string running to the end.
    data = b'{"a":1,"b":"' + unit * (60_000 // len(unit))
    over = prescan(data, LIMITS)
    assert over is not None and over.kind == "string_too_long"
    assert prescan(b'["' + unit * 4000, IntakeLimits(64 * 1024, 32, 2048, 64 * 1024)) is None  # open: the parser's


def test_size_is_checked_first():
    over = prescan(b"[" * 70_000, LIMITS)
    assert over is not None and over.kind == "too_large"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=30,
)
# Strings full of what a byte count could mistake for structure.
json_values |= st.lists(st.text(alphabet='{}[]:,"\\ a\n', max_size=12), max_size=4)
small_limits = st.builds(
    IntakeLimits,
    max_bytes=st.integers(20, 600),
    max_depth=st.integers(1, 6),
    max_members=st.integers(1, 40),
    max_string_bytes=st.integers(1, 30),
)


@settings(max_examples=1500, deadline=None)
@given(json_values, small_limits, st.booleans())
def test_the_raw_byte_scan_agrees_with_the_parsed_value(value, limits, indented):
    data = orjson.dumps(value, option=orjson.OPT_INDENT_2 if indented else 0)
    depth, members, longest = _measure(value)
    over = prescan(data, limits)
    if len(data) > limits.max_bytes:
        assert over is not None and over.kind == "too_large"
    elif longest > limits.max_string_bytes:
        assert over is not None and over.kind == "string_too_long"
    elif members > limits.max_members:
        assert over is not None and over.kind == "too_many_members", (members, over)
    elif depth > limits.max_depth:
        assert over is not None and over.kind == "too_deep"
    else:
        assert over is None, (depth, members, longest, over)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), small_limits)
def test_any_bytes_are_measured_without_an_error(data, limits):
    over = prescan(data, limits)
    assert over is None or over.kind in {"too_large", "string_too_long", "too_many_members", "too_deep"}
