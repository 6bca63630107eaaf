"""The ``Throttle`` port on Redis: a pause is a key that expires when the pause ends."""

from __future__ import annotations

import time

import redis

PREFIX = "cancelflow:pause:"
# Reading Redis before every call would double the round trips; a pause is seen within this.
CACHE_SECONDS = 0.2


class RedisThrottle:
    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._cache: dict[str, tuple[float, float]] = {}

    def paused_for(self, provider: str) -> float:
        now = time.monotonic()
        cached = self._cache.get(provider)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return max(0.0, cached[1] - now)
        try:
            ttl_ms = int(self._redis.pttl(PREFIX + provider))
        except redis.RedisError:
            ttl_ms = -1  # no broker, no pause: the provider's own 429s still slow us down
        until = now + ttl_ms / 1000 if ttl_ms > 0 else 0.0
        self._cache[provider] = (now, until)
        return max(0.0, until - now)

    def pause(self, provider: str, seconds: float) -> None:
        milliseconds = max(1, int(seconds * 1000))
        try:
            current = int(self._redis.pttl(PREFIX + provider))
            if current < milliseconds:
                self._redis.set(PREFIX + provider, "1", px=milliseconds)
        except redis.RedisError:
            pass
        self._cache.pop(provider, None)
