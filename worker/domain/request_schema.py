"""The producer message's JSON Schema, generated from the request model (``request.py``).

Served at ``/api/v1/schema/cancellation-request.json`` and committed as
``docs/cancellation-request.schema.json``; ``python -m worker.domain.request_schema`` rewrites that
file. The schema is pydantic's, with what the model's validators do made explicit: the GUID, date
and amount travel as strings, and each field says what it means (from the contract). A field added
to the model appears here on the next generation; a test fails until it has a description below.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

from worker.domain.request import CancellationRequest

SCHEMA_URL_PATH = "/api/v1/schema/cancellation-request.json"
COMMITTED_SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "cancellation-request.schema.json"

# The strings the model's "before" validators turn into values. The validators accept a few more
# spellings (a GUID without hyphens, an exponent in an amount): producers should send these forms.
GUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
AMOUNT_PATTERN = r"^[0-9]+(\.[0-9]+)?$"

_ENCODINGS: dict[tuple[str, str], dict[str, Any]] = {
    ("SixDot50Leg", "batch_id"): {"type": "string", "format": "uuid", "pattern": GUID_PATTERN},
    ("PaywallLeg", "payment_date"): {"type": "string", "format": "date", "pattern": DATE_PATTERN},
    ("Expect", "amount"): {"type": "string", "pattern": AMOUNT_PATTERN},
}

_TITLES = {
    "CancellationRequest": "cancellations.submit request",
    "SixDot50Leg": "6DOT50 leg",
    "PaywallLeg": "Paywall leg",
    "BamboraLeg": "Bambora leg",
    "Expect": "Expected totals",
    "ReplyTo": "Reply task",
}

DESCRIPTIONS: dict[str, dict[str, str]] = {
    "CancellationRequest": {
        "": "The value of kwargs['request'] of task cancellations.submit, published to queue "
            "'cancellations' with the JSON serializer. Unknown fields are refused: the job is "
            "kept in state 'invalid' with the validation errors, never retried.",
        "idempotency_key": "Identifies the job: its id is uuid5(NAMESPACE_URL, 'cancelflow:' + "
                           "idempotency_key). The same key again never causes a second provider "
                           "call; it answers the existing job.",
        "reason": "Free text kept with the job (optional).",
        "on_cutoff": "What a Paywall leg does once its payment day is over in PAYWALL_TIMEZONE: "
                     "'reject' it, or 'refund' the payments instead.",
        "mirror": "The legs move the same money: reconciliation also requires every leg's "
                  "cancelled count and amount to agree.",
        "legs": "1 to 10,000 targets to cancel, one per batch, bulk, payment or Bambora payment.",
        "expect": "Totals the cancelled legs must add up to (optional).",
        "notify_url": "When the job reaches a final state, cancelflow POSTs {type: 'job.finished',"
                      " timestamp, data: JOB} here, signed per Standard Webhooks (optional; http "
                      "or https).",
        "reply_to": "When the job reaches a final state, a Celery task message is published "
                    "with kwargs={'job': JOB}, once per final state (optional).",
    },
    "SixDot50Leg": {
        "": "A 6DOT50 batch in DRAFT status, cancelled with its payments.",
        "provider": "Always 'sixdot50'.",
        "batch_id": "The batch's GUID, as a string.",
    },
    "PaywallLeg": {
        "": "Paywall payments, cancelled on the day they were made (in PAYWALL_TIMEZONE).",
        "provider": "Always 'paywall'.",
        "scope": "'bulk': every payment of the merchant's bulk; 'payment': one payment.",
        "merchant_unique_code": "The MerchantUniqueCode the payments (or the bulk) were made with.",
        "payment_date": "The payment day, as an ISO date (YYYY-MM-DD).",
    },
    "BamboraLeg": {
        "": "One Bambora payment in Authorized status.",
        "provider": "Always 'bambora'.",
        "merchant": "The Bambora merchant number.",
        "payment_reference": "The payment's reference at Bambora.",
    },
    "Expect": {
        "": "Totals the cancelled legs must add up to for the job to be reconciled.",
        "count": "How many payments are cancelled in all.",
        "amount": "Their total, as a decimal string such as '18500.00' (never a JSON number).",
        "currency": "ISO 4217 code of the amount (optional).",
    },
    "ReplyTo": {
        "": "Where the job's final state is published as a Celery task message (JSON).",
        "task": "The task name of the message.",
        "queue": "The queue it is published to.",
    },
}


def _annotate(name: str, model: dict[str, Any]) -> None:
    notes = DESCRIPTIONS.get(name, {})
    if "" in notes:
        model["description"] = notes[""]
    model["title"] = _TITLES.get(name, model.get("title", name))
    properties = model.get("properties", {})
    for field, prop in properties.items():
        if (name, field) in _ENCODINGS:
            # The field's own schema (e.g. Decimal's number-or-string) describes the Python type.
            prop = properties[field] = {"title": prop["title"], **_ENCODINGS[name, field]}
        if field in notes:
            prop["description"] = notes[field]


@cache
def _document_text() -> str:
    schema = CancellationRequest.model_json_schema(mode="validation")
    for name, model in schema.get("$defs", {}).items():
        _annotate(name, model)
    _annotate("CancellationRequest", schema)
    document = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def request_schema() -> dict[str, Any]:
    """The JSON Schema of the producer message's ``request`` (a fresh copy each call)."""
    document: dict[str, Any] = json.loads(_document_text())
    return document


def request_schema_text() -> str:
    """The schema as committed to ``docs/``: indented JSON, one trailing newline."""
    return _document_text()


def main(argv: list[str] | None = None) -> int:
    """Write the schema to ``docs/`` (or to the path given)."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else COMMITTED_SCHEMA
    target.write_text(request_schema_text(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
