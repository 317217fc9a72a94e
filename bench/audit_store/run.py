"""What every step of the audit benchmark shares (and the Strategist benchmark with it): the machine's
description, a process's CPU seconds, percentiles, and `Run`, which runs one step, reports its failure and goes on."""

import argparse
import math
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.gate_latency import machine as gate_machine


# -- machine and process figures ---------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    return {**gate_machine(), "sqlite": sqlite3.sqlite_version}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


# -- the run ---------------------------------------------------------------------------------------------------
class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.results: dict[str, Any] = {"failed_steps": {}}

    def step(self, name: str, run: Callable[[], Any]) -> Any:
        print(f"{name}:", flush=True)
        started = time.perf_counter()
        try:
            value = run()
        except Exception as exc:
            self.results["failed_steps"][name] = repr(exc)
            print(f"  FAILED: {exc!r} (going on)", flush=True)
            return None
        if isinstance(value, dict):
            value.setdefault("step_s", round(time.perf_counter() - started, 1))
        self.results[name] = value
        return value
