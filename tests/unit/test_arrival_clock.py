import pytest

from gate.runtime.arrival_clock import ArrivalClock


def test_burst_on_an_idle_gate():
    clock = ArrivalClock()
    # 5 messages arrive together; the gate handles one every 10 ms.
    waits = [clock.waited(delivered=5, now=100.0 + 0.010 * i) for i in range(5)]
    assert waits == pytest.approx([0.0, 0.010, 0.020, 0.030, 0.040])


def test_a_gate_that_keeps_up_reports_no_wait():
    clock = ArrivalClock()
    for i in range(1, 100):
        assert clock.waited(delivered=i, now=float(i)) == 0.0


def test_steady_overload_grows_the_wait():
    clock = ArrivalClock()
    # Two messages arrive per time unit, one is handled per time unit.
    waits = [clock.waited(delivered=2 * (t + 1), now=float(t)) for t in range(10)]
    assert waits[0] == 0.0
    assert waits == sorted(waits) and waits[-1] >= 4.0
