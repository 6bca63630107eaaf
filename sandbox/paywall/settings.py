"""Paywall's settings: defaults and validation, shared by the settings and the seeding routes.

Delivery control (how callbacks are sent) is a setting and can be overridden per bulk.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sandbox.control import ControlError, refuse_unknown
from sandbox.state import JSONObject

MAX_PAGE_SIZE = 1000  # [doc] query pages and callback pages hold at most 1,000 payments
ORDERS = ("in_order", "reverse", "shuffle")
# The name a query page gives its total, if any: no document says (PROVIDERS.md); the cancel
# answer's TotalPaymentCount and a plain TotalCount are the plausible ones.
QUERY_TOTALS = ("TotalPaymentCount", "TotalCount")
SECRETS = ("apikeypublic", "apikeyprivate", "hash_key")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

DELIVERY_DEFAULTS: JSONObject = {
    "delay_ms": 200,
    "page_size": MAX_PAGE_SIZE,
    "order": "in_order",
    "seed": None,
    "duplicate_pages": [],
    "drop_pages": [],
    "bad_hash": False,
    "hold": False,
}
SETTINGS_DEFAULTS: JSONObject = {
    "apikeypublic": "sandbox-public-key",
    "apiclientpublic": "sandbox-public-client",
    "apikeyprivate": "sandbox-private-key",
    "apiclientprivate": "sandbox-private-client",
    "hash_key": "sandbox-hash-key",
    "timezone": "Europe/Istanbul",  # [assume] which day "same day" means
    "today": None,
    "callback_url": None,
    "retries": 3,
    "retry_backoff_ms": 500,
    "query_totals": None,
    **DELIVERY_DEFAULTS,
}


def parse_day(value: object, name: str = "date") -> date:
    """A `YYYY-MM-DD` string as a date; ValueError otherwise."""
    if not (isinstance(value, str) and _DAY.fullmatch(value)):
        raise ValueError(f"{name} must be a date YYYY-MM-DD: {value!r}")
    return date.fromisoformat(value)


def _text(value: object, name: str) -> str:
    if not (isinstance(value, str) and value):
        raise ControlError(f"{name} must be a non-empty string")
    return value


def _count(value: object, name: str, lowest: int = 0, highest: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise ControlError(f"{name} must be an integer >= {lowest}")
    if highest is not None and value > highest:
        raise ControlError(f"{name} must be at most {highest}")
    return value


def _pages(value: object, name: str) -> list[int]:
    if not isinstance(value, list):
        raise ControlError(f"{name} must be a list of page numbers (from 1)")
    return [_count(page, name, lowest=1) for page in value]


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ControlError(f"{name} must be a boolean")
    return value


def _zone(value: object, name: str) -> str:
    try:
        ZoneInfo(_text(value, name))
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ControlError(f"{name} is not a known time zone: {value!r}") from error
    return str(value)


def _optional(check: Callable[[object, str], Any]) -> Callable[[object, str], Any]:
    return lambda value, name: None if value is None else check(value, name)


def _url(value: object, name: str) -> str:
    text = _text(value, name)
    if not text.startswith(("http://", "https://")):
        raise ControlError(f"{name} must be an http(s) URL")
    return text


def _day_setting(value: object, name: str) -> str:
    try:
        return parse_day(value, name).isoformat()
    except ValueError as error:
        raise ControlError(str(error)) from error


def _query_totals(value: object, name: str) -> str:
    if value not in QUERY_TOTALS:
        raise ControlError(f"{name} must be null or one of: {', '.join(QUERY_TOTALS)}")
    return str(value)


def _order(value: object, name: str) -> str:
    if value not in ORDERS:
        raise ControlError(f"{name} must be one of: {', '.join(ORDERS)}")
    return str(value)


DELIVERY_CHECKS: dict[str, Callable[[object, str], Any]] = {
    "delay_ms": _count,
    "page_size": lambda value, name: _count(value, name, 1, MAX_PAGE_SIZE),
    "order": _order,
    "seed": _optional(lambda value, name: _count(value, name, -(2**63))),
    "duplicate_pages": _pages,
    "drop_pages": _pages,
    "bad_hash": _flag,
    "hold": _flag,
}
SETTING_CHECKS: dict[str, Callable[[object, str], Any]] = {
    "apikeypublic": _text,
    "apiclientpublic": _text,
    "apikeyprivate": _text,
    "apiclientprivate": _text,
    "hash_key": _text,
    "timezone": _zone,
    "today": _optional(_day_setting),
    "callback_url": _optional(_url),
    "retries": _count,
    "retry_backoff_ms": _count,
    "query_totals": _optional(_query_totals),
    **DELIVERY_CHECKS,
}


def checked(
    changes: Mapping[str, Any], checks: Mapping[str, Callable[[object, str], Any]]
) -> JSONObject:
    """The changes, validated field by field against `checks` (unknown fields refused)."""
    refuse_unknown(changes, checks)
    return {name: checks[name](value, name) for name, value in changes.items()}
