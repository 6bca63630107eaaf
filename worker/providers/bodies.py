"""The answer body kept on an attempt row: as the provider sent it, minus secrets, bounded.

Keeping the raw body lets a person (and a later fix) see what a provider really answered, fields
we do not read included. A body is kept verbatim unless it carries a field whose name says it
is a secret (a card token in a Bambora payment's operations, an access token): then those values
are masked and the JSON is written out again. Token answers are never kept at all.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import httpx

# Longer bodies are cut: a row per call must stay small (a Paywall query page is ~140 KiB).
MAX_KEPT_CHARS = 65_536
MASK = "***"
SECRET_NAMES = frozenset({
    "token", "access_token", "refresh_token", "id_token", "secret", "client_secret",
    "password", "apikeypublic", "apikeyprivate", "hash",
})  # fmt: skip


def kept_body(response: httpx.Response) -> str | None:
    """What to store of ``response``'s body; None when it is empty."""
    try:
        text = response.text
    except (UnicodeDecodeError, LookupError):
        text = response.content.decode("utf-8", errors="replace")
    if not text:
        return None
    lowered = text.casefold()
    # Most answers hold no secret-named field: keep those exactly as received, unparsed.
    if any(f'"{name}"' in lowered for name in SECRET_NAMES):
        # Not JSON: the quoted word was just text, kept as it is.
        with contextlib.suppress(ValueError):
            text = json.dumps(_masked(json.loads(text)), ensure_ascii=False)
    return text[:MAX_KEPT_CHARS]


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: MASK if isinstance(key, str) and key.casefold() in SECRET_NAMES
                and value[key] is not None else _masked(value[key]) for key in value}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value
