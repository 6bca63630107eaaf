"""Paywall's error codes mapped to what they mean for a cancellation.

The .NET SDK's ``ErrorCodes`` and its older ``PaymentErrorCodes`` number the same refusals
differently (docs/providers-assumed.md). ``NUMBERING`` says which one the account speaks (the
adapter's ``codes`` takes another table). Paywall's own exception codes (5 in the SDK's
numbering, and the HTTP-like 500/503) are ``UNAVAILABLE``: after a cancel or a refund they are
ambiguous.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Meaning(StrEnum):
    NOT_FOUND = "not_found"
    INVALID = "invalid"
    AUTH = "auth"
    ALREADY_CANCELLED = "already_cancelled"
    ALREADY_REFUNDED = "already_refunded"
    ALREADY_FINALIZED = "already_finalized"
    NOT_CONVENIENT = "not_convenient"
    NOT_NOW = "not_now"
    UNAVAILABLE = "unavailable"
    UNKNOWN = "unknown"


SDK_ERROR_CODES: dict[int, Meaning] = {
    2: Meaning.INVALID,
    3: Meaning.NOT_FOUND,
    4: Meaning.AUTH,
    5: Meaning.UNAVAILABLE,  # Exception
    56: Meaning.NOT_FOUND,
    57: Meaning.NOT_FOUND,
    92: Meaning.NOT_CONVENIENT,
    93: Meaning.ALREADY_REFUNDED,
    94: Meaning.ALREADY_CANCELLED,
    97: Meaning.ALREADY_FINALIZED,
    269: Meaning.NOT_NOW,
    400: Meaning.INVALID,
    401: Meaning.AUTH,
    403: Meaning.AUTH,
    404: Meaning.NOT_FOUND,
    500: Meaning.UNAVAILABLE,
    502: Meaning.UNAVAILABLE,
    503: Meaning.UNAVAILABLE,
    504: Meaning.UNAVAILABLE,
}

# [assume] the SDK's ErrorCodes numbering, the one PROVIDERS.md quotes (56, 94, 97, 269).
NUMBERING = SDK_ERROR_CODES


def meaning_of(code: int, numbering: Mapping[int, Meaning] = NUMBERING) -> Meaning:
    return numbering.get(code, Meaning.UNKNOWN)
