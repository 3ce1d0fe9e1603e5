"""Bounded, jittered exponential backoff that honours the wait a Graph error asks for.

Clock, sleep and RNG are injected so tests never sleep on the wall clock.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable

from migrator.graph.classify import ErrorClass
from migrator.graph.errors import GraphError, NetworkError


@dataclass
class RetryPolicy:
    """Retry failures classed retry_later up to `max_attempts` calls in total.

    The delay before retry n (1-based) is max(the error's wait, full-jitter backoff
    uniform(0, min(max_delay, base_delay * 2**(n-1)))). A wait longer than `max_wait` is not slept
    through: the error goes back to the caller (the executor reschedules instead of blocking).
    Ambiguous network failures (timeouts, resets after the request left) of a non-idempotent
    call are never retried here: a send may already have gone out.
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_wait: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, err: GraphError, *, idempotent: bool) -> float | None:
        """Seconds to wait before the next attempt, or None to give up and raise `err`.

        The error's classification decides, not its Python class: a `NetworkError` is a
        `RetryLater` by inheritance, yet a bare 4xx or a request refused before it left is
        classed fix_payload, and sending it again unchanged fails the same way.
        """
        if attempt >= self.max_attempts or err.classification.error_class is not ErrorClass.RETRY_LATER:
            return None
        if isinstance(err, NetworkError) and err.ambiguous and not idempotent:
            return None
        wait = err.wait_seconds or 0.0
        if wait > self.max_wait:
            return None
        backoff = self.rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
        return max(wait, backoff)


NO_RETRY = RetryPolicy(max_attempts=1)
