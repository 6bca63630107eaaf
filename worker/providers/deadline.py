"""A time bound on a whole provider call, not only on each network operation.

httpx's timeouts bound each operation (the wait for a pooled connection, the connect, each write,
each read), never a call: a provider that answers one byte at a time, each within the read
timeout, holds the call, the worker's thread and the leg's lease for as long as it likes (a
known httpx limitation, encode/httpx#1450). :func:`call_deadline` sets a deadline for the calls
its block makes (per thread); the network backend of the provider client caps every connect,
TLS handshake, write and read at what is left of it, and a call past its deadline fails as the
timeout of the operation it was in (``httpx.ReadTimeout``...), which the adapters already map:
ambiguous for a call that changes state.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

_deadline: ContextVar[float | None] = ContextVar("cancelflow_call_deadline", default=None)
# Writes are cut in pieces so that each one waits for what is left of the deadline, not longer.
WRITE_PIECE = 16 * 1024


@contextmanager
def call_deadline(seconds: float | None) -> Iterator[None]:
    """Calls made in the block end within ``seconds`` of its start (None: no bound)."""
    token = _deadline.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def _left(timeout: float | None, expired: type[Exception]) -> float | None:
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the call ran past its time bound")
    return left if timeout is None else min(timeout, left)


class _BoundedStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        for start in range(0, len(buffer), WRITE_PIECE):
            self._stream.write(buffer[start:start + WRITE_PIECE],
                               _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _BoundedStream(self._stream.start_tls(
            ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class BoundedBackend(httpcore.NetworkBackend):
    """A network backend whose streams honour :func:`call_deadline`."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _BoundedStream(self._backend.connect_tcp(
            host, port, _left(timeout, httpcore.ConnectTimeout), local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None
                            ) -> httpcore.NetworkStream:
        return _BoundedStream(self._backend.connect_unix_socket(
            path, _left(timeout, httpcore.ConnectTimeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def bound_calls(transport: httpx.BaseTransport | None) -> None:
    """Make the calls through an httpx transport honour :func:`call_deadline`.

    httpx 0.28 has no public way to give its transport a network backend: the one its httpcore
    pool holds is wrapped in place (``tests/unit/test_call_bound.py`` fails if that changes).
    """
    if isinstance(transport, httpx.HTTPTransport):
        pool = transport._pool
        pool._network_backend = BoundedBackend(pool._network_backend)


def whole_call_seconds(request: httpx.Request) -> float | None:
    """A call's bound: the longest of its per-operation timeouts (``HTTP_TIMEOUT_SECONDS``)."""
    timeouts = request.extensions.get("timeout") or {}
    bounds = [float(value) for value in timeouts.values() if value is not None]
    return max(bounds) if bounds else None
