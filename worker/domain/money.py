"""Amounts: a ``Decimal`` read from a provider, and the contract's string. Never a float."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


class MoneyError(ValueError):
    """An amount that is not a finite decimal."""


def parse_decimal(value: object) -> Decimal:
    """A finite ``Decimal`` from a provider's number or string, never through float.

    JSON numbers are parsed by the providers' adapters with ``parse_float=Decimal``; a float that
    slipped through is converted from its shortest repr, which is exact for 2-place amounts.
    """
    if isinstance(value, bool):
        raise MoneyError(f"not an amount: {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise MoneyError(f"not an amount: {value!r}") from exc
    elif isinstance(value, float):
        result = Decimal(repr(value))
    else:
        raise MoneyError(f"not an amount: {value!r}")
    if not result.is_finite():
        raise MoneyError(f"not a finite amount: {value!r}")
    return result


def format_amount(amount: Decimal) -> str:
    """The contract's decimal string: fixed point, at least two places (``"18500.00"``)."""
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int), "format_amount takes finite amounts"
    quantized = amount.quantize(Decimal("0.01")) if exponent > -2 else amount
    return format(quantized, "f")

