"""Exponential backoff: the one formula for waiting after consecutive failures, used for
feed polls (:func:`next_poll_delay`, from ``bot.feeds``) and delivery retries
(``bot.core.delivery.backoff``). Pure arithmetic."""

from __future__ import annotations

import random

#: Above this exponent the delay is at its cap anyway (and 2.0**n stays finite).
_MAX_EXPONENT = 62


def backoff_delay(
    failures: int,
    *,
    base: float,
    cap: float,
    jitter: float = 0.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after ``failures`` consecutive failures: ``base * 2**(n-1)``
    capped at ``cap``, 0 after none. With ``jitter`` (a fraction below 1) the delay is
    scaled down by a random factor in ``[1 - jitter, 1]``, so that things that failed
    together do not retry together (each step still grows while ``jitter < 0.5``)."""
    if failures <= 0:
        return 0.0
    delay = min(cap, base * (2.0 ** min(failures - 1, _MAX_EXPONENT)))
    if jitter:
        delay *= (rng or random).uniform(1.0 - jitter, 1.0)
    return delay


def next_poll_delay(
    failures: int,
    *,
    interval: float,
    base: float,
    max_delay: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds until a feed's next poll.

    After a success (``failures == 0``) the poll interval. After ``n`` consecutive
    failures :func:`backoff_delay`: ``base * 2**(n-1)`` capped at ``max_delay``, jittered
    down by up to 20% so feeds that failed together do not retry together (each step
    still grows: 2 * 0.8 > 1). Never sooner than ``retry_after``."""
    if failures <= 0:
        delay = interval
    else:
        delay = backoff_delay(failures, base=base, cap=max_delay, jitter=0.2, rng=rng)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
