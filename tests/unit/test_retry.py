"""The retry decision and backoff are plain functions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from worker.providers import errors
from worker.providers.retry import backoff, parse_retry_after, retry_delay, should_retry

KW = {"provider": "p", "operation": "op"}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (errors.TransportError("t", **KW), True),
        (errors.ProviderUnavailable("503", **KW), True),
        (errors.RateLimited("429", **KW), True),
        (errors.Conflict("409", **KW), True),
        (errors.MalformedResponse("garbage", **KW), True),
        (errors.InvalidRequest("400", **KW), False),
        (errors.NotFound("404", **KW), False),
        (errors.AuthFailed("401", **KW), False),
        (errors.NotCancellable("402", **KW), False),
    ],
)
def test_should_retry_only_transient_errors(error: errors.ProviderError, expected: bool) -> None:
    """Transport, 409, 429, 5xx and garbled answers are retried; other 4xx never."""
    assert should_retry(error) is expected


def test_backoff_is_full_jitter_under_a_cap() -> None:
    """The delay is rng() times min(cap, base * 2**attempt)."""
    assert backoff(0, 2, 300, rng=lambda: 1.0) == 2
    assert backoff(3, 2, 300, rng=lambda: 0.5) == 8
    assert backoff(20, 2, 300, rng=lambda: 1.0) == 300
    assert backoff(5, 2, 300, rng=lambda: 0.0) == 0


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    """A 429's Retry-After sets a floor on the delay, bounded by the cap."""
    limited = errors.RateLimited("429", retry_after=30, **KW)
    assert retry_delay(limited, 0, 2, 300, rng=lambda: 0.0) == 30
    huge = errors.RateLimited("429", retry_after=10_000, **KW)
    assert retry_delay(huge, 0, 2, 300, rng=lambda: 0.0) == 300


def test_retry_after_parses_seconds_and_dates() -> None:
    """Retry-After is delta-seconds or an HTTP date; garbage is ignored."""
    now = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7
    assert parse_retry_after("Sat, 21 Nov 2026 12:00:10 GMT", now=now) == 10
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
