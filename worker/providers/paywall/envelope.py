"""Paywall's answers as values: the envelope, a refusal, what a cancel or a refund queued.

Every answer comes in an envelope ``{ErrorCodeType, ErrorMessage, ErrorCode, Result, Message,
Body}`` (seed 001). ``ErrorCode`` 0 with ``Result`` true is success; another code is a business
refusal (a :class:`Refused` value), whatever the HTTP status it came with. Auth failures and
Paywall's own exceptions raise from the error tree; an exception, a 5xx or an unreadable answer
to a call that changes state is ambiguous (it may have taken effect). Fields are read tolerantly
(``wire``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from worker.providers.calls import parse_json
from worker.providers.errors import (
    AuthFailed,
    InvalidRequest,
    MalformedResponse,
    ProviderUnavailable,
)
from worker.providers.fields import first_present
from worker.providers.paywall.codes import NUMBERING, Meaning, meaning_of
from worker.providers.paywall.wire import (
    OPERATION_ID_NAMES,
    QUEUED_NAMES,
    TOTAL_COUNT_NAMES,
    flag,
    operation_id,
    whole_number,
)
from worker.providers.retry import rate_limited

PROVIDER = "paywall"
MESSAGE_LENGTH = 300  # a refusal's message as kept in a leg's detail


@dataclass(frozen=True, slots=True)
class Accepted:
    """Paywall queued the operation; results come later by callback.

    ``bulk_payment_id`` (the operation's id) is None when Paywall queued it without saying it:
    its callback pages are then matched by the code. ``total_payment_count`` is None when not
    given.
    """

    bulk_payment_id: str | None
    total_payment_count: int | None


@dataclass(frozen=True, slots=True)
class Refused:
    """A business refusal (``ErrorCode != 0``)."""

    code: int
    meaning: Meaning
    message: str


def common(response: httpx.Response, operation: str) -> dict[str, Any]:
    return {"provider": PROVIDER, "operation": operation, "http_status": response.status_code,
            "body": response.text}


def _message(data: Mapping[str, Any]) -> str:
    text = first_present(data, ("ErrorMessage",)) or first_present(data, ("Message",)) or "refused"
    return str(text)[:MESSAGE_LENGTH]


def _envelope(response: httpx.Response, operation: str, *, mutating: bool) -> Mapping[str, Any]:
    data = parse_json(response, provider=PROVIDER, operation=operation, mutating=mutating)
    if not isinstance(data, Mapping) or first_present(data, ("ErrorCode", "Result")) is None:
        raise MalformedResponse("answer is not Paywall's envelope", ambiguous=mutating,
                                **common(response, operation))
    return data


def _refusal(response: httpx.Response, data: Mapping[str, Any], code: int, operation: str, *,
             mutating: bool, codes: Mapping[int, Meaning]) -> Refused:
    """A refusal by code; auth and Paywall's own exceptions raise from the error tree."""
    meaning = meaning_of(code, codes)
    message = _message(data)
    if meaning is Meaning.AUTH:
        raise AuthFailed(message, provider_code=str(code), **common(response, operation))
    if meaning is Meaning.UNAVAILABLE:
        # Paywall's "an exception occurred": the operation may or may not have been taken.
        raise ProviderUnavailable(message, provider_code=str(code), ambiguous=mutating,
                                  **common(response, operation))
    return Refused(code, meaning, message)


def open_envelope(response: httpx.Response, operation: str, *, mutating: bool,
                  codes: Mapping[int, Meaning] = NUMBERING) -> Any:
    """The envelope's Body on success, a :class:`Refused` for a business refusal."""
    status = response.status_code
    if status in (401, 403):
        raise AuthFailed("Paywall refused the API headers", **common(response, operation))
    if status == 429:
        raise rate_limited("rate limited", response, **common(response, operation))
    if status >= 500:
        raise ProviderUnavailable(f"HTTP {status}", ambiguous=mutating,
                                  **common(response, operation))
    if status >= 400:
        # A refusal Paywall words in its envelope is read as one, whatever the HTTP status.
        try:
            data = _envelope(response, operation, mutating=False)
        except MalformedResponse:
            data = {}
        code = whole_number(first_present(data, ("ErrorCode",)))
        if code:
            return _refusal(response, data, code, operation, mutating=mutating, codes=codes)
        raise InvalidRequest(f"HTTP {status}", **common(response, operation))
    data = _envelope(response, operation, mutating=mutating)
    raw_code = first_present(data, ("ErrorCode",))
    code = 0 if raw_code is None else whole_number(raw_code)
    if code is None:
        raise MalformedResponse("ErrorCode is not a number", ambiguous=mutating,
                                **common(response, operation))
    if code != 0:
        return _refusal(response, data, code, operation, mutating=mutating, codes=codes)
    if flag(first_present(data, ("Result",))) is not True:
        # Neither a success nor a refusal: the envelope contradicts itself.
        raise MalformedResponse("ErrorCode 0 without Result true", ambiguous=mutating,
                                **common(response, operation))
    return first_present(data, ("Body",))


def read_queued(response: httpx.Response, body: Any, operation: str) -> Accepted:
    """What a cancel's (or refund's) successful answer says was queued (seed 001's Body).

    ``Body.Result`` true is what "queued" means; false is not acceptance. Without ``Result``
    the operation's id vouches for it; without either, whether anything was queued is unknown.
    """
    if not isinstance(body, Mapping):
        raise MalformedResponse("a success without a Body: whether it was queued is unknown",
                                ambiguous=True, **common(response, operation))
    queued = flag(first_present(body, QUEUED_NAMES))
    if queued is False:
        # The envelope says success, the Body says not queued: trust neither, read first.
        raise ProviderUnavailable("Paywall did not queue it (Body.Result false)",
                                  ambiguous=True, **common(response, operation))
    bulk_payment_id = operation_id(first_present(body, OPERATION_ID_NAMES))
    if queued is None and bulk_payment_id is None:
        raise MalformedResponse("neither Body.Result nor BulkPaymentId: whether it was queued "
                                "is unknown", ambiguous=True, **common(response, operation))
    return Accepted(bulk_payment_id, whole_number(first_present(body, TOTAL_COUNT_NAMES)))
