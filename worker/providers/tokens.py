"""Bearer tokens shared by every thread of a process: cached until near expiry, fetched again
once when the provider answers 401 (it may have revoked or expired the token early)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import httpx

from worker.providers.calls import NullObserver, OnCall, call
from worker.providers.errors import AuthFailed

T = TypeVar("T")

# Refresh a little before expiry so that a token never dies between check and use.
MARGIN = timedelta(seconds=60)


class BearerToken:
    def __init__(self, fetch: Callable[[], tuple[str, datetime]]) -> None:
        """``fetch`` asks the provider for a token and says when it expires."""
        self._fetch = fetch
        self._token: str | None = None
        self._expires_at = datetime.min.replace(tzinfo=UTC)
        self._lock = threading.Lock()

    def get(self, *, force: bool = False) -> str:
        with self._lock:
            if force or not self._token or datetime.now(UTC) >= self._expires_at - MARGIN:
                self._token, self._expires_at = self._fetch()
            return self._token

    def call(self, send: Callable[[str], T]) -> T:
        """``send(token)``; after an AuthFailed, once more with a fresh token."""
        try:
            return send(self.get())
        except AuthFailed:
            return send(self.get(force=True))


def fetch_token(client: httpx.Client, request: httpx.Request,
                interpret: Callable[[httpx.Response], tuple[str, datetime]], *, provider: str,
                on_call: OnCall) -> tuple[str, datetime]:
    """One ``get_token`` call: counted in the metrics, never a leg's attempt, and its answer (the
    token itself) never kept."""
    return call(client, request, interpret, provider=provider, operation="get_token",
                mutating=False, observer=NullObserver(), on_call=on_call, keep_body=False)
