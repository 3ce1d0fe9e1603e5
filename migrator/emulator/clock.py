"""Clocks for the emulator: the wall clock, or a virtual one that tests move by hand."""

from __future__ import annotations

import time


class WallClock:
    """Real time (epoch seconds); latency and timeouts are really slept."""

    virtual = False

    def __call__(self) -> float:
        return time.time()


class VirtualClock:
    """Time that only moves when told to: warm-up, cadence and budgets testable without sleeping.

    With a virtual clock the emulator never sleeps for latency faults.
    """

    virtual = True

    def __init__(self, start: float = 1_800_000_000.0):
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += float(seconds)
        return self.now

    def set(self, t: float) -> float:
        self.now = float(t)
        return self.now
