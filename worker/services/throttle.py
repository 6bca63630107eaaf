"""Provider-wide backoff: after a 429, every leg of that provider waits, not just the one.

``Throttle`` is the port; the worker's adapter keeps the pause in Redis so that every worker
process honours it, and tests use the in-memory one.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Throttle(Protocol):
    def paused_for(self, provider: str) -> float:
        """Seconds left before the provider may be called again (0 when it may)."""
        ...

    def pause(self, provider: str, seconds: float) -> None:
        """Hold every call to the provider for ``seconds`` (extends, never shortens, a pause)."""
        ...


class MemoryThrottle:
    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def paused_for(self, provider: str) -> float:
        with self._lock:
            return max(0.0, self._until.get(provider, 0.0) - time.monotonic())

    def pause(self, provider: str, seconds: float) -> None:
        with self._lock:
            until = time.monotonic() + seconds
            self._until[provider] = max(until, self._until.get(provider, 0.0))
