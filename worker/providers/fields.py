"""Reading provider answers tolerantly: numbers, counts and times in any usual form.

A provider's document names a field's meaning, rarely its JSON type: an amount may come as
``18500``, ``18500.0`` or ``"18500.00"``, a count as ``185`` or ``185.0``, a time with or
without its zone. Amounts go through ``worker.domain.money.parse_decimal``. Each reader returns
the value or raises ``ValueError``; whether a field may be absent is the adapter's decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from worker.domain.money import parse_decimal

MAX_COUNT_DIGITS = 18


def read_count(value: object) -> int:
    """A whole number from ``185``, ``185.0`` or ``"185"``; ``185.5`` is not a count."""
    number = parse_decimal(value)
    # A count of more than MAX_COUNT_DIGITS digits is garbage, and "1e999999999" would take
    # minutes to become an int: refuse it before the conversion.
    if not number.is_finite() or number.adjusted() >= MAX_COUNT_DIGITS:
        raise ValueError(f"not a count: {value!r}")
    if number != number.to_integral_value():
        raise ValueError(f"not a whole number: {value!r}")
    return int(number)


def read_utc(value: object) -> datetime | None:
    """An ISO-8601 time as an aware UTC datetime; one without a zone is UTC; None if unreadable.

    6DOT50 documents every timestamp as UTC and writes them without an offset
    (``"2022-06-14T06:26:43.473"``).
    """
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def first_present(data: Mapping[str, Any], names: Sequence[str]) -> Any:
    """The value of the first of ``names`` that ``data`` holds and that is not null, or None.

    Names are matched exactly first, then without regard to case (``totalCount``,
    ``TotalCount``).
    """
    for name in names:
        if data.get(name) is not None:
            return data[name]
    folded = {key.casefold(): value for key, value in data.items() if isinstance(key, str)}
    for name in names:
        if folded.get(name.casefold()) is not None:
            return folded[name.casefold()]
    return None
