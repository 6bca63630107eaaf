"""Dashboard sign-in attempts, throttled per client address, in bounded memory.

A client that fails ``MAX_FAILURES`` times within ``WINDOW_SECONDS`` is answered 429 (with
Retry-After) until that window ends, without its token being compared. A token of 32+ characters
cannot be guessed this way anyway; the throttle keeps a script's guesses from costing the
receiver, and makes them loud. The count is per gunicorn worker process (each keeps its own), and
at most ``MAX_CLIENTS`` addresses are remembered: the oldest are forgotten first.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_FAILURES = 5
WINDOW_SECONDS = 300.0
MAX_CLIENTS = 10_000


@dataclass
class _Window:
    started: float
    failures: int = 0


class LoginThrottle:
    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_seconds: float = WINDOW_SECONDS,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_failures = max_failures
        self._window = window_seconds
        self._max_clients = max_clients
        self._clock = clock
        self._clients: OrderedDict[str, _Window] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may try again; 0 when it may try now."""
        now = self._clock()
        with self._lock:
            window = self._clients.get(client)
            if window is None or now - window.started >= self._window:
                return 0
            if window.failures < self._max_failures:
                return 0
            return max(1, math.ceil(window.started + self._window - now))

    def failed(self, client: str) -> None:
        """Count a wrong token from ``client``."""
        now = self._clock()
        with self._lock:
            window = self._clients.pop(client, None)
            if window is None or now - window.started >= self._window:
                window = _Window(now)
            window.failures += 1
            self._clients[client] = window  # newest last
            while len(self._clients) > self._max_clients:
                self._clients.popitem(last=False)

    def succeeded(self, client: str) -> None:
        """A right token: the client's count starts again."""
        with self._lock:
            self._clients.pop(client, None)

    def __len__(self) -> int:
        return len(self._clients)
