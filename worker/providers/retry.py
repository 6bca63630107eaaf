"""The retry decision and the backoff, as plain functions (randomness injected)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from worker.providers.errors import ProviderError, RateLimited


def should_retry(error: ProviderError) -> bool:
    """Transport errors, garbled answers, 409, 429 and 5xx: another try. Other 4xx: never."""
    return error.retryable


def backoff(
    attempt: int, base: float, cap: float, rng: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)].

    Full jitter spreads the retries of many legs that failed together (a provider outage) instead
    of sending them back in one wave.
    """
    ceiling = min(cap, base * (2.0 ** max(attempt, 0)))
    return float(rng() * ceiling)


def retry_delay(
    error: ProviderError,
    attempt: int,
    base: float,
    cap: float,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds before the next try; a provider's Retry-After is honoured up to ``cap``.

    The cap also bounds Retry-After so that no countdown outlives the broker's visibility timeout.
    """
    delay = backoff(attempt, base, cap, rng)
    if isinstance(error, RateLimited) and error.retry_after is not None:
        delay = max(delay, min(error.retry_after, cap))
    return delay


def rate_limited(message: str, response: httpx.Response, **common: Any) -> RateLimited:
    """A 429 answer as the error tree's ``RateLimited``, with its Retry-After when readable."""
    return RateLimited(message, retry_after=parse_retry_after(response.headers.get("retry-after")),
                       **common)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date; None when absent or garbage."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
