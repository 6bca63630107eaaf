"""The path every provider call takes: latency, call log, faults, the real handler, effects.

A provider module declares its operations with `Operations`; each decorated view then goes
through `_intercept`: settings latency, the call log, the fault book, the real handler (which
returns an `Answer` saying whether it changed state), the effects counter, and finally the
answer or the scripted fault.
"""

from __future__ import annotations

import errno
import functools
import socket
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from flask import Response, current_app, request

from sandbox.faults import Fault
from sandbox.state import ProviderStore, SandboxState, current_state, effect_key

P = ParamSpec("P")
S = TypeVar("S", bound=ProviderStore)
# What a malformed answer says when the operation did not run (nothing real to truncate).
MALFORMED_BODY = '{"statusCode": "CANC'


@dataclass(frozen=True)
class Answer:
    """A provider handler's answer, and whether producing it changed the provider's state."""

    body: Any
    status: int = 200
    effect: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)


class FaultAbortError(ConnectionResetError):
    """Raised while writing a faulted answer: the server then writes nothing at all.

    A connection error with ECONNRESET, which both servers (werkzeug in-process, gunicorn for
    `python -m sandbox`) take as "the client is gone": no 500, no traceback, the socket closed.
    """

    def __init__(self, reset: bool) -> None:
        super().__init__(errno.ECONNRESET, "reset" if reset else "closed without an answer")
        self.reset = reset


class Operations:
    """The operations one emulated provider exposes, each routed through the interceptor."""

    def __init__(self, provider: str, canonical: Callable[[str], str] = str) -> None:
        """`canonical` spells a target one way (e.g. a lowercase GUID) for logs, faults, effects."""
        self.provider = provider
        self.canonical = canonical
        self.names: list[str] = []

    def __call__(
        self, operation: str, *, target: str | Callable[[], str | None] | None = None
    ) -> Callable[[Callable[Concatenate[S, P], Answer]], Callable[P, Response]]:
        """Declare `operation`; `target` identifies the resource: the name of a URL variable,
        or a function reading it from the request (body, query string), None when absent."""
        self.names.append(operation)

        def decorate(handler: Callable[Concatenate[S, P], Answer]) -> Callable[P, Response]:
            @functools.wraps(handler)
            def view(*args: P.args, **kwargs: P.kwargs) -> Response:
                raw = target() if callable(target) else kwargs[target] if target else None
                found = None if raw is None else self.canonical(str(raw))
                return _intercept(self.provider, operation, found, handler, args, kwargs)

            return view

        return decorate


def _intercept(
    provider: str,
    operation: str,
    target: str | None,
    handler: Callable[..., Answer],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> Response:
    state = current_state()
    # Read the body now: a slow client must not hold the state lock inside the handler.
    request.get_data()
    with state.lock:
        call = state.calls.open(
            at=state.clock(),
            provider=provider,
            operation=operation,
            method=request.method,
            path=request.path,
            target=target,
        )
        fault = state.faults.take(provider, operation, target)
        call.fault = fault.id if fault else None
        latency_ms = state.latency_ms
    state.pause(latency_ms)

    answer: Answer | None = None
    if fault is None or fault.spec.effect:
        with state.lock:
            answer = handler(state.stores[provider], *args, **kwargs)
            call.effect = answer.effect
            if answer.effect:
                state.effects[effect_key(provider, operation, target)] += 1
    response = _respond(state, provider, fault, answer)
    with state.lock:
        aborted = fault is not None and fault.spec.action in ("timeout", "reset")
        call.status = fault.spec.action if fault and aborted else response.status_code
    state.pause(fault.spec.delay_ms if fault else 0)
    return response


def _respond(
    state: SandboxState, provider: str, fault: Fault | None, answer: Answer | None
) -> Response:
    """The answer to send: the real one, or what the fault makes of it."""
    if fault is None or fault.spec.action == "delay":
        assert answer is not None
        return _json_response(answer.body, answer.status, answer.headers)
    spec = fault.spec
    if spec.action == "status":
        status = cast(int, spec.status)
        body = spec.body
        if body is None:
            body = state.providers[provider].error_body(status, HTTPStatus(status).phrase)
        return _json_response(body, status, spec.headers)
    if spec.action == "malformed":
        text = MALFORMED_BODY
        if answer is not None:
            real = _json_response(answer.body, answer.status, {}).get_data(as_text=True).strip()
            text = real[: max(1, len(real) // 2)]
        return Response(text, 200, mimetype="application/json")
    environ = request.environ
    sock = environ.get("werkzeug.socket") or environ.get("gunicorn.socket")
    return Response(_aborting(sock, reset=spec.action == "reset"), 200)


def _json_response(body: Any, status: int, headers: Mapping[str, str]) -> Response:
    response = current_app.json.response(body)
    assert isinstance(response, Response)
    response.status_code = status
    response.headers.update(headers)
    return response


def _aborting(sock: socket.socket | None, *, reset: bool) -> Iterator[bytes]:
    """A response body that ends the connection before werkzeug writes a byte of it."""
    if sock is not None:
        try:
            if reset:
                # Linger on with timeout 0: close() sends RST instead of FIN. Closed here,
                # before the server's own graceful close (shutdown(SHUT_WR)) could send a FIN
                # ahead of the RST; the server's later close of this socket does nothing.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            else:
                # No more reads: even a plain werkzeug handler sees EOF and ends the connection.
                sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass
    raise FaultAbortError(reset)
    yield b""  # pragma: no cover - makes this a generator, so the raise happens while writing
