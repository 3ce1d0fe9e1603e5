"""Random helpers for the sample: cheaper stand-ins for `random.Random` methods (the sample
draws millions of numbers; each consumes one `rng.random()`), and distinct numeric ids.
"""

from __future__ import annotations

import bisect
import itertools
import random


def _ri(rng: random.Random, a: int, b: int | None = None) -> int:
    """Like rng.randrange(a, b) (or randrange(a) when b is None): an int in [a, b)."""
    if b is None:
        a, b = 0, a
    return a + int(rng.random() * (b - a))


def _pick(rng: random.Random, items, cum):
    """Like rng.choices(items, cum_weights=cum)[0], without its per-call overhead."""
    return items[bisect.bisect_right(cum, rng.random() * cum[-1])]


def numeric_id(i: int, digits: int, rng: random.Random, salt: int = 0) -> str:
    """A distinct, random-looking decimal id of `digits` digits (> 7) for each index i < 10**7.

    The last seven digits are a permutation of i (affine map, digit reversal, affine map:
    each step is a bijection of 0..10**7-1), so ids are distinct; the leading ones random.
    """
    x = ((i + salt) * 7_654_321 + 1_234_567) % 10 ** 7
    low = (int(f"{x:07d}"[::-1]) * 3_216_547 + 7_093_411) % 10 ** 7
    return f"{_ri(rng, 10 ** (digits - 8), 10 ** (digits - 7))}{low:07d}"


def cum(weights) -> list[float]:
    """Cumulative weights for `_pick`."""
    return list(itertools.accumulate(weights))
