"""A Celery request that knows the digest of the message body as it was received.

An invalid message without a usable idempotency key is identified by the SHA-256 of its body, and
the body is only visible here, before Celery decodes it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from celery.worker.request import Request


def body_digest(body: bytes | str) -> str:
    """The SHA-256 hex of a message body exactly as the broker delivered it."""
    raw = body.encode() if isinstance(body, str) else bytes(body)
    return hashlib.sha256(raw).hexdigest()


class DigestingRequest(Request):  # type: ignore[misc]
    def __init__(self, message: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(message, *args, **kwargs)
        self._request_dict["body_sha256"] = body_digest(message.body)
