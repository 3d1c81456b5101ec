"""Bounded exponential backoff with jitter, for writes that must outlive a short API outage.

Equal jitter (each delay uniform in [cap/2, cap], cap doubling up to `max_s`) keeps writers that
failed together from retrying together, while the lower half keeps the total wait predictable:
the sum of the delays never exceeds `budget_s`, so a writer either gets through an outage of
about that length or gives up with the last error, in bounded time.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from ladder_kube.errors import ApiError

log = logging.getLogger("ladder.kube")
T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    first_s: float = 0.5
    max_s: float = 30.0
    budget_s: float = 180.0  # an API server restart (a minute or two) fits; a dead cluster does not

    def delays(self, rng: random.Random) -> Iterator[float]:
        spent, cap = 0.0, self.first_s
        while True:
            delay = rng.uniform(cap / 2, cap)
            if spent + delay > self.budget_s:
                return
            spent += delay
            yield delay
            cap = min(self.max_s, cap * 2)


def call_with_retry(
    fn: Callable[[], T],
    backoff: Backoff | None,
    *,
    what: str = "Kubernetes API call",
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """fn(), again after each transient ApiError while the backoff allows; other errors at once."""
    delays = backoff.delays(rng or random.Random()) if backoff else iter(())
    while True:
        try:
            return fn()
        except ApiError as err:
            if not err.transient:
                raise
            delay = next(delays, None)
            if delay is None:
                raise
            log.warning("%s failed (%s); retrying in %.1fs", what, err, delay)
            sleep(delay)
