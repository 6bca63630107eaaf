"""The producer message's JSON Schema: committed current, every field described, and in agreement
with the request model on the documented example and on invalid messages."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from worker.domain.request import CancellationRequest
from worker.domain.request_schema import COMMITTED_SCHEMA, request_schema, request_schema_text

ROOT = Path(__file__).resolve().parents[2]


def readme_example() -> dict[str, Any]:
    """The example request of the README's Producers section (the contract's)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Producers\n", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the Producers section has no JSON example"
    example: dict[str, Any] = json.loads(block.group(1))
    return example


def schema_accepts(request: Any) -> bool:
    """With formats asserted, as a producer's validator should (a 31 November is no date)."""
    validator = Draft202012Validator(request_schema(),
                                     format_checker=Draft202012Validator.FORMAT_CHECKER)
    return validator.is_valid(request)


def model_accepts(request: Any) -> bool:
    try:
        CancellationRequest.model_validate(request)
    except ValidationError:
        return False
    return True


def described(node: Any, where: str = "") -> Iterator[tuple[str, bool]]:
    """Every property of every object schema, with whether it has a description."""
    if isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            yield f"{where}.{name}", "description" in prop
        for key, value in node.items():
            yield from described(value, f"{where}.{key}" if key != "properties" else where)
    elif isinstance(node, list):
        for value in node:
            yield from described(value, where)


def test_the_committed_schema_is_the_generated_one() -> None:
    """docs/cancellation-request.schema.json is what the model generates today (else: run
    `python -m worker.domain.request_schema` and commit)."""
    assert COMMITTED_SCHEMA.read_text(encoding="utf-8") == request_schema_text(), (
        "stale: run `python -m worker.domain.request_schema` and commit the file"
    )


def test_the_schema_is_a_valid_2020_12_schema_with_every_field_described() -> None:
    """The document is a valid draft 2020-12 schema and each property says what it means."""
    schema = request_schema()
    Draft202012Validator.check_schema(schema)
    undescribed = [where for where, has in described(schema) if not has]
    assert undescribed == [], "add these to DESCRIPTIONS in worker/domain/request_schema.py"


def test_the_readme_example_is_valid_for_the_schema_and_the_model() -> None:
    """The README's (the contract's) example request passes both the schema and the model."""
    example = readme_example()
    assert schema_accepts(example)
    assert model_accepts(example)


def _with(change: str, value: Any) -> dict[str, Any]:
    """The README example with one dotted path set (``-`` as value removes it)."""
    request = copy.deepcopy(readme_example())
    *parents, last = change.split(".")
    node: Any = request
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value == "-":
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return request


VALID = {
    "the minimum": {"idempotency_key": "k",
                    "legs": [{"provider": "bambora", "merchant": "T1", "payment_reference": "r"}]},
    "refund on cut-off, mirrored": _with("on_cutoff", "refund") | {"mirror": True},
    "no reason, expect or on_cutoff": _with("reason", "-") | {"expect": None},
    "a currency": _with("expect.currency", "EUR"),
    "a zero amount, uppercase GUID": _with("expect.amount", "0")
    | {"legs": [{"provider": "sixdot50", "batch_id": "F945D71C-B00F-4E77-8175-253093157A2F"}]},
    "a 200-character key": _with("idempotency_key", "k" * 200),
}

INVALID = {
    "an unknown field": _with("colour", "blue"),
    "an unknown leg field": _with("legs.0.amount", "10.00"),
    "an unknown provider": _with("legs.0.provider", "stripe"),
    "no legs": _with("legs", []),
    "10,001 legs": _with("legs", [{"provider": "sixdot50",
                                   "batch_id": "f945d71c-b00f-4e77-8175-253093157a2f"}] * 10_001),
    "no idempotency key": _with("idempotency_key", "-"),
    "an empty idempotency key": _with("idempotency_key", ""),
    "a 201-character key": _with("idempotency_key", "k" * 201),
    "a number as key": _with("idempotency_key", 4711),
    "an amount as a JSON number": _with("expect.amount", 18500.0),
    "a negative amount": _with("expect.amount", "-1.00"),
    "an amount that is not a number": _with("expect.amount", "lots"),
    "a count as a string": _with("expect.count", "185"),
    "a negative count": _with("expect.count", -1),
    "a lower-case currency": _with("expect.currency", "eur"),
    "a batch id that is not a GUID": _with("legs.0.batch_id", "batch-1"),
    "a batch id as a number": _with("legs.0.batch_id", 42),
    "a date that is not a date": _with("legs.1.payment_date", "2026-11-31"),
    "a date as a number": _with("legs.1.payment_date", 20261121),
    "an unknown scope": _with("legs.1.scope", "all"),
    "a paywall leg without its date": _with("legs.2.payment_date", "-"),
    "an empty merchant": _with("legs.3.merchant", ""),
    "an unknown on_cutoff": _with("on_cutoff", "wait"),
    "mirror as a string": _with("mirror", "false"),
    "mirror as a number": _with("mirror", 0),
    "a reason over 1,000 characters": _with("reason", "r" * 1001),
    "not an object": ["order-4711-cancel"],
}


@pytest.mark.parametrize("request_", VALID.values(), ids=VALID.keys())
def test_schema_and_model_both_accept_a_valid_request(request_: dict[str, Any]) -> None:
    """A request the schema accepts, the model accepts too."""
    assert schema_accepts(request_)
    assert model_accepts(request_)


@pytest.mark.parametrize("request_", INVALID.values(), ids=INVALID.keys())
def test_schema_and_model_both_refuse_an_invalid_request(request_: Any) -> None:
    """An invalid request fails the schema and the model alike (they agree)."""
    assert not model_accepts(request_)
    assert not schema_accepts(request_)
