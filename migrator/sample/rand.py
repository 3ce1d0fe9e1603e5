"""Cheaper stand-ins for `random.Random` helpers (the sample draws millions of numbers).

Both consume exactly one `rng.random()` per call, so streams stay deterministic per seed.
"""

from __future__ import annotations

import bisect
import random


def _ri(rng: random.Random, a: int, b: int | None = None) -> int:
    """Like rng.randrange(a, b) (or randrange(a) when b is None): an int in [a, b)."""
    if b is None:
        a, b = 0, a
    return a + int(rng.random() * (b - a))


def _pick(rng: random.Random, items, cum):
    """Like rng.choices(items, cum_weights=cum)[0], without its per-call overhead."""
    return items[bisect.bisect_right(cum, rng.random() * cum[-1])]
