"""What an intent may cost the gate, checked on its raw bytes before anything parses it.

Parsing, validating, redacting and serialising an intent all cost in proportion to its size and its shape, and
Python's recursion (redaction, the audit record's serialiser) has a depth limit: an intent nested a few hundred
levels deep once passed validation and then crashed the serialiser, leaving no reply and no audit record. So
every intent is measured first, in C-speed byte operations, against four limits (`GateSettings`): its size,
its nesting depth, its number of members (keys, array elements and containers: the `:`, `,`, `{` and `[`
outside strings) and its longest string. Anything over a limit is a `VAL_ERR` without being parsed.

A normal intent (a few hundred bytes, two levels, a few dozen members) is cleared by its length and two byte
counts over the whole payload, which can only over-count (a `{` inside a string counts too); only a payload those
counts cannot clear is measured exactly, with its strings cut out first. The exact measure is linear in the
payload and the payload is bounded, so no intent costs more than a few times a normal one before it is refused.
"""

import re
from array import array
from dataclasses import dataclass
from itertools import accumulate

# A JSON string with its escapes, written unrolled (possessive), group 1 its content. A string left open runs to
# the end of the payload: were a missing closing quote a failed match, the search would start again at the next
# quote inside it and read to the end again (`\"` 16,000 times took 3.6 s). `(?s)`: an escaped newline too.
_STRING = re.compile(rb'(?s)"([^"\\]*+(?:\\.[^"\\]*+)*+)(?:"|\\?\Z)')
_BRACKETS = b"{}[]"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKETS)
# `{` and `[` to +1, `}` and `]` to -1 (as signed bytes), so running sums are nesting depths.
_DEPTH_STEP = bytes.maketrans(b"{[}]", b"\x01\x01\xff\xff")


@dataclass(frozen=True, slots=True)
class IntakeLimits:
    max_bytes: int
    max_depth: int
    max_members: int
    max_string_bytes: int


@dataclass(frozen=True, slots=True)
class OverLimit:
    """Why a payload is refused unparsed: the message for the reply, and the field error's type."""

    message: str
    kind: str


def _members(data: bytes) -> int:
    return data.count(b":") + data.count(b",") + data.count(b"{") + data.count(b"[")


def prescan(data: bytes, limits: IntakeLimits) -> OverLimit | None:
    """None when `data` is within every limit; otherwise the first limit it breaks."""
    size = len(data)
    if size > limits.max_bytes:
        return OverLimit(f"payload is {size} bytes; the limit is {limits.max_bytes}", "too_large")
    opens = data.count(b"{") + data.count(b"[")
    if opens <= limits.max_depth:
        # Every member and every string byte is a byte of the payload: a payload no longer than both limits
        # cannot exceed either (the common case: two byte counts in all).
        if size <= limits.max_members and size <= limits.max_string_bytes:
            return None
        if opens + data.count(b":") + data.count(b",") <= limits.max_members and size <= limits.max_string_bytes:
            return None
    return _exact(data, limits)


def _exact(data: bytes, limits: IntakeLimits) -> OverLimit | None:
    if b'\\"' in data:
        # A quote inside a string (or a string ending in a backslash): only the full pattern knows where strings end.
        strings = _STRING.findall(data)
        structure = _STRING.sub(b'""', data)
    else:
        # No escaped quote: every other piece between quotes is a string's content, all in C.
        pieces = data.split(b'"')
        strings = pieces[1::2]
        structure = b'""'.join(pieces[0::2])
    longest = max(map(len, strings), default=0)
    if longest > limits.max_string_bytes:
        return OverLimit(
            f"payload holds a string of {longest} bytes; the limit is {limits.max_string_bytes}", "string_too_long"
        )
    members = _members(structure)
    if members > limits.max_members:
        return OverLimit(
            f"payload has {members} keys, elements and containers; the limit is {limits.max_members}",
            "too_many_members",
        )
    # At most `max_members` brackets open here, so this walk is bounded too.
    steps = structure.translate(_DEPTH_STEP, _NOT_BRACKETS)
    depth = max(accumulate(array("b", steps)), default=0)
    if depth > limits.max_depth:
        return OverLimit(f"payload nests {depth} levels deep; the limit is {limits.max_depth}", "too_deep")
    return None
