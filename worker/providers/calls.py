"""The HTTP boundary shared by the adapters: timing, observation and transport-error mapping."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import httpx

from worker.providers.bodies import kept_body
from worker.providers.deadline import call_deadline, whole_call_seconds
from worker.providers.errors import MalformedResponse, ProviderError, TransportError

# Errors raised before a single byte of the request left: repeating the call is always safe.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One provider call as the ledger and the metrics see it. Never a secret.

    ``body`` is the answer as kept on the attempt row (``worker.providers.bodies``): secrets
    masked, bounded; None for token calls and when nothing came back.
    """

    provider: str
    operation: str
    http_status: int | None
    outcome: str
    latency_ms: float
    provider_code: str | None = None
    request_id: str | None = None
    body: str | None = None


class CallObserver(Protocol):
    """Told before and after each provider call made for a leg (the attempt rows)."""

    def before(self, operation: str) -> object: ...

    def after(self, handle: object, record: CallRecord) -> None: ...


class NullObserver:
    def before(self, operation: str) -> object:
        return None

    def after(self, handle: object, record: CallRecord) -> None:
        return None


OnCall = Callable[[CallRecord], None]
T = TypeVar("T")


def _no_metrics(_record: CallRecord) -> None:
    return None


def call(
    client: httpx.Client,
    request: httpx.Request,
    interpret: Callable[[httpx.Response], T],
    *,
    provider: str,
    operation: str,
    mutating: bool,
    observer: CallObserver,
    on_call: OnCall = _no_metrics,
    keep_body: bool = True,
) -> T:
    """Send one request and interpret its answer; every call is reported, whatever its end.

    Transport failures become :class:`TransportError`, ambiguous when the request may have been
    sent for a call that changes state. ``interpret`` maps the answer to a value or raises the
    provider's :class:`ProviderError`. ``keep_body=False`` for answers that carry a secret as
    such (a token service's). The whole call, answer read included, ends within the request's
    timeout (worker/providers/deadline.py), not only each of its network operations.
    """
    handle = observer.before(operation)
    started = time.perf_counter()
    response: httpx.Response | None = None
    error: BaseException | None = None
    try:
        with call_deadline(whole_call_seconds(request)):
            response = client.send(request)
        return interpret(response)
    except httpx.TransportError as exc:
        error = TransportError(
            f"no answer ({type(exc).__name__})",
            provider=provider,
            operation=operation,
            ambiguous=mutating and not isinstance(exc, _NOT_SENT),
        )
        raise error from exc
    except BaseException as exc:
        error = exc
        raise
    finally:
        record = CallRecord(
            provider=provider,
            operation=operation,
            http_status=response.status_code if response is not None else None,
            outcome=type(error).__name__ if error is not None else "ok",
            latency_ms=(time.perf_counter() - started) * 1000,
            provider_code=error.provider_code if isinstance(error, ProviderError) else None,
            request_id=response.headers.get("x-request-id") if response is not None else None,
            body=kept_body(response) if keep_body and response is not None else None,
        )
        observer.after(handle, record)
        on_call(record)


def parse_json(
    response: httpx.Response, *, provider: str, operation: str, mutating: bool
) -> Any:
    """The answer's JSON with numbers as ``Decimal``; garbage is a :class:`MalformedResponse`."""
    try:
        return json.loads(response.content, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedResponse(
            "answer is not JSON",
            provider=provider,
            operation=operation,
            http_status=response.status_code,
            body=response.text[:200] if response.content else None,
            ambiguous=mutating,
        ) from exc
