"""One error tree for every provider; each adapter maps its answers onto it in one place.

    ProviderError                  http status, provider code, request id, body excerpt
    ├── AuthFailed                 401/403 after one token refresh
    ├── InvalidRequest             other 4xx: our request is wrong; never retried
    ├── NotCancellable             the provider refuses because of the target's state
    ├── RefusedWhileCancellable    refused, yet the provider's own read says cancellable; retried
    ├── NotFound                   404
    ├── Conflict                   409: someone else is changing the target; retried
    ├── RateLimited                429, with Retry-After when given; retried
    ├── ProviderUnavailable        5xx; retried (ambiguous when it answers a cancel)
    ├── MalformedResponse          an answer we cannot read; retried, ambiguous if it changed state
    └── TransportError             no answer (connect, timeout, reset); retried

``ambiguous`` is true when the call was meant to change state and may have done so without our
knowing (a timeout after the request was sent, a 5xx, a garbled answer): the target must be read
before the call is repeated.
"""

from __future__ import annotations

from typing import ClassVar

BODY_EXCERPT = 500


class ProviderError(Exception):
    """Base of every provider failure. ``str()`` never contains a secret or a whole body."""

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        operation: str,
        http_status: int | None = None,
        provider_code: str | None = None,
        request_id: str | None = None,
        body: str | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.operation = operation
        self.http_status = http_status
        self.provider_code = provider_code
        self.request_id = request_id
        self.body = body[:BODY_EXCERPT] if body else body
        self.ambiguous = ambiguous

    def __str__(self) -> str:
        status = f" HTTP {self.http_status}" if self.http_status else ""
        code = f" code {self.provider_code}" if self.provider_code else ""
        return f"{self.provider} {self.operation}{status}{code}: {self.message}"


class AuthFailed(ProviderError):
    pass


class InvalidRequest(ProviderError):
    pass


class NotCancellable(ProviderError):
    pass


class RefusedWhileCancellable(ProviderError):
    """The provider refused a cancel although reading the target says it can be cancelled.

    Bambora's merchant portal is the known cause: a payment cancelled (or captured) there still
    reads Authorized through the API, which refuses to cancel it. Not final: retried within the
    attempts budget, after which a person checks the portal.
    """

    retryable = True


class NotFound(ProviderError):
    pass


class Conflict(ProviderError):
    retryable = True


class RateLimited(ProviderError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    retryable = True


class MalformedResponse(ProviderError):
    retryable = True


class TransportError(ProviderError):
    retryable = True
