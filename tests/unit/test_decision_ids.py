"""Decision ids (cio_kernel/ids.py): UUIDv7 in the 32-hex form every id had before, time-ordered, monotonic in a
process (the gate pipeline's use: tests/unit/test_intake_stream_rules.py)."""

import itertools
import subprocess
import sys
import uuid

from cio_kernel.ids import COUNTER_BITS, Uuid7, is_uuid7, uuid7_int, uuid7_ms

T_MS = 1_765_000_000_123


def _clock(*ms: int):
    return iter([m * 1_000_000 + 456 for m in ms]).__next__


def test_the_bit_layout_is_rfc_9562_uuid7():
    value = uuid7_int(T_MS, (0xABC << 62) | 0x1234)
    parsed = uuid.UUID(int=value)
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert value >> 80 == T_MS
    assert (value >> 64) & 0xFFF == 0xABC and value & ((1 << 62) - 1) == 0x1234


def test_ids_are_32_lowercase_hex_and_carry_their_millisecond():
    made = Uuid7(_clock(T_MS), seed=b"s")()
    assert len(made) == 32 and made == made.lower() and int(made, 16) >= 0
    assert is_uuid7(made) and uuid7_ms(made) == T_MS
    assert not is_uuid7(f"{int(made, 16) ^ (1 << 78):032x}")  # another version
    assert not is_uuid7(made.upper())


def test_later_milliseconds_sort_later_whatever_the_random_bits():
    for seed in range(50):
        a = Uuid7(_clock(T_MS), seed=bytes([seed]))()
        b = Uuid7(_clock(T_MS + 1), seed=bytes([seed + 100]))()
        assert a < b


def test_one_process_counts_on_within_a_millisecond_and_when_the_clock_steps_back():
    make = Uuid7(_clock(T_MS, T_MS, T_MS, T_MS - 5, T_MS + 1), seed=b"s")
    ids = [make() for _ in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert [uuid7_ms(i) for i in ids] == [T_MS] * 4 + [T_MS + 1]
    assert int(ids[1], 16) == int(ids[0], 16) + 1


def test_the_counter_carries_from_rand_b_into_rand_a_and_then_into_the_next_millisecond():
    make = Uuid7(itertools.repeat(T_MS * 1_000_000).__next__, seed=b"s")
    make._last_ms, make._value = T_MS, uuid7_int(T_MS, (1 << 62) - 1)  # rand_b full
    carried = make()
    assert is_uuid7(carried) and uuid7_ms(carried) == T_MS and (int(carried, 16) >> 64) & 0xFFF == 1
    make._value = uuid7_int(T_MS, (1 << COUNTER_BITS) - 1)  # the whole counter full
    borrowed = make()
    assert is_uuid7(borrowed) and uuid7_ms(borrowed) == T_MS + 1 and borrowed > carried


_FORK = """
import os
from cio_kernel.ids import new_decision_id

new_decision_id()  # the parent's generator has its state before the fork
read, write = os.pipe()
if os.fork() == 0:
    os.write(write, " ".join(new_decision_id() for _ in range(20)).encode())
    os._exit(0)
os.close(write)
os.wait()
child = os.read(read, 4096).decode().split()
mine = [new_decision_id() for _ in range(20)]
print(len(set(child)), len(set(child) & set(mine)))
"""


def test_a_forked_child_does_not_repeat_its_parents_ids():
    # A fresh single-threaded interpreter: forking this (threaded) test process is what the child must not copy.
    done = subprocess.run([sys.executable, "-c", _FORK], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["20", "0"]
