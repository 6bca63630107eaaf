"""The dashboard's sign-in throttle: per address, per window, in bounded memory."""

from __future__ import annotations

from webhooks.login_throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_is_held_after_its_failures_until_the_window_ends() -> None:
    """Five wrong tokens within the window hold that address, for what is left of it."""
    clock = Clock()
    throttle = LoginThrottle(max_failures=5, window_seconds=300, clock=clock)
    for _ in range(4):
        throttle.failed("10.0.0.1")
        assert throttle.retry_after("10.0.0.1") == 0
    throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 300
    assert throttle.retry_after("10.0.0.2") == 0
    clock.now += 299.5
    assert throttle.retry_after("10.0.0.1") == 1
    clock.now += 0.5
    assert throttle.retry_after("10.0.0.1") == 0


def test_a_new_window_starts_the_count_again() -> None:
    """Failures spread wider than the window never add up to a hold."""
    clock = Clock()
    throttle = LoginThrottle(max_failures=2, window_seconds=60, clock=clock)
    throttle.failed("a")
    clock.now += 61
    throttle.failed("a")
    assert throttle.retry_after("a") == 0


def test_a_right_token_clears_the_count() -> None:
    """A person who mistyped and then signed in starts from nothing."""
    throttle = LoginThrottle(max_failures=2, clock=Clock())
    throttle.failed("a")
    throttle.succeeded("a")
    throttle.failed("a")
    assert throttle.retry_after("a") == 0


def test_memory_is_bounded_by_forgetting_the_oldest_addresses() -> None:
    """Guesses from many addresses keep at most max_clients entries; the newest stay."""
    throttle = LoginThrottle(max_failures=1, max_clients=100, clock=Clock())
    for n in range(1000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}")
    assert len(throttle) == 100
    assert throttle.retry_after("10.0.3.231") > 0  # the last one
    assert throttle.retry_after("10.0.0.0") == 0  # forgotten
