"""The schemas of the OpenAPI document (``webhooks/openapi.py``): the contract's shapes."""

from __future__ import annotations

from worker.domain.reconciliation import LEG_RECONCILIATION_KEYS, ReconciliationState, Source
from worker.domain.states import JobState, LegState, Provider, Reason

_AMOUNT = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "description": "decimal"}

DIFFERENCE = {
    "type": "object",
    "required": ["leg", "field", "expected", "reported"],
    "properties": {
        "leg": {"type": ["string", "null"]},
        "field": {"type": "string"},
        "expected": {"type": "string"},
        "reported": {"type": "string"},
    },
}

_FIGURES = {
    "type": "object",
    "required": ["count", "amount"],
    "additionalProperties": False,
    "properties": {"count": {"type": "integer", "minimum": 0}, "amount": _AMOUNT},
}

_REPORTED_COUNTS = ("cancelled_count", "refunded_count", "failed_count", "settled_count")
_REPORTED_AMOUNTS = ("cancelled_amount", "refunded_amount", "settled_amount")

# The contract's shape: the evidence's keys at the top of the leg's reconciliation object.
LEG_RECONCILIATION = {
    "type": "object",
    "required": sorted(LEG_RECONCILIATION_KEYS),
    "additionalProperties": False,
    "properties": {
        # All four null: the leg's wait for figures ended without any (its difference says so).
        "source": {"type": ["string", "null"], "enum": [*(s.value for s in Source), None]},
        "currency": {"type": ["string", "null"], "description": "ISO 4217"},
        "expected": {"anyOf": [_FIGURES, {"type": "null"}]},
        "reported": {
            "type": ["object", "null"],
            "required": [*_REPORTED_COUNTS, *_REPORTED_AMOUNTS],
            "additionalProperties": False,
            "properties": {
                **{name: {"type": "integer", "minimum": 0} for name in _REPORTED_COUNTS},
                **{name: _AMOUNT for name in _REPORTED_AMOUNTS},
            },
        },
        "differences": {"type": "array", "items": {"$ref": "#/components/schemas/Difference"}},
    },
}

LEG = {
    "type": "object",
    "required": [
        "id", "provider", "target", "state", "reason", "already_cancelled", "attempts",
        "provider_reference", "reconciliation",
    ],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "provider": {"type": "string", "enum": [p.value for p in Provider]},
        "target": {"type": "object", "additionalProperties": {"type": "string"}},
        "state": {"type": "string", "enum": [s.value for s in LegState]},
        "reason": {"type": ["string", "null"], "enum": [*(r.value for r in Reason), None]},
        "detail": {"type": ["string", "null"]},
        "already_cancelled": {"type": "boolean"},
        "at_risk": {"type": "boolean"},
        "attempts": {"type": "integer", "minimum": 0},
        "provider_reference": {"type": ["string", "null"]},
        "reconciliation": {"anyOf": [{"$ref": "#/components/schemas/LegReconciliation"},
                                     {"type": "null"}]},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}

JOB = {
    "type": "object",
    "required": [
        "id", "idempotency_key", "state", "created_at", "updated_at", "errors", "leg_counts",
        "legs", "legs_next_cursor", "reconciliation",
    ],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "idempotency_key": {"type": ["string", "null"]},
        "state": {"type": "string", "enum": [s.value for s in JobState]},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "errors": {"type": "array", "items": {
            "type": "object",
            "required": ["field", "error"],
            "properties": {"field": {"type": "string"}, "error": {"type": "string"}},
        }},
        "leg_counts": {
            "type": "object",
            "description": "every leg of the job, counted by state (listed or not)",
            "required": [s.value for s in LegState],
            "additionalProperties": False,
            "properties": {s.value: {"type": "integer", "minimum": 0} for s in LegState},
        },
        "legs": {
            "type": "array",
            "description": "the job's first legs: up to 1,000 (GET /api/v1/jobs/{id}), up to "
                           "100 per job in a list",
            "items": {"$ref": "#/components/schemas/Leg"},
        },
        "notifications": {
            "type": "array",
            "description": "GET /api/v1/jobs/{id} only: the outcomes owed to the producer once "
                           "the job ended (notify_url webhooks, reply_to messages)",
            "items": {"$ref": "#/components/schemas/Notification"},
        },
        "legs_next_cursor": {
            "type": ["string", "null"],
            "description": "when the job has more legs than it lists: the cursor of "
                           "GET /api/v1/jobs/{id}/legs for the rest",
        },
        "reconciliation": {
            "type": "object",
            "required": ["state", "differences"],
            "properties": {
                # not_applicable: an invalid job has nothing to reconcile.
                "state": {"type": "string", "enum": [
                    *(s.value for s in ReconciliationState), "not_applicable"]},
                "differences": {
                    "type": "array", "items": {"$ref": "#/components/schemas/Difference"}
                },
            },
        },
    },
}

# Outcomes (issue 17): one webhook or reply message owed once the job ended.
NOTIFICATION = {
    "type": "object",
    "required": ["kind", "url", "reply_to", "final_state", "status", "attempts",
                 "last_http_status", "last_error", "next_attempt_at", "delivered_at"],
    "properties": {
        "kind": {"type": "string", "enum": ["webhook", "reply"]},
        "url": {"type": ["string", "null"]},
        "reply_to": {"anyOf": [{"type": "null"}, {
            "type": "object", "required": ["task", "queue"],
            "properties": {"task": {"type": "string"}, "queue": {"type": "string"}}}]},
        "final_state": {"type": "string", "enum": [s.value for s in JobState]},
        "status": {"type": "string", "enum": ["pending", "delivered", "failed"]},
        "attempts": {"type": "integer", "minimum": 0},
        "last_http_status": {"type": ["integer", "null"]},
        "last_error": {"type": ["string", "null"], "description": "the error class"},
        "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
        "delivered_at": {"type": ["string", "null"], "format": "date-time"},
    },
}

ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}

# A Paywall callback page as the receiver reads it (PROVIDERS.md). Fields Paywall sends that are
# not listed here (Type, DateTime, ErrorMessage, ...) are accepted and kept in the raw body.
CALLBACK_PAGE = {
    "type": "object",
    "required": ["BulkPaymentId", "MerchantUniqueCode", "Hash"],
    "properties": {
        "BulkPaymentId": {"type": ["integer", "string"]},
        "MerchantUniqueCode": {"type": "string", "minLength": 1, "maxLength": 200},
        "Hash": {"type": "string", "description":
                 "lowercase hex SHA-256 of {hashKey}###{BulkPaymentId}###{MerchantUniqueCode}"},
        "PageNumber": {"type": "integer", "minimum": 1, "default": 1},
        "TotalPages": {"type": "integer", "minimum": 1, "default": 1},
        "IsCompressed": {"type": "boolean", "description": "true is refused (400)"},
        "Payments": {"type": "array", "items": {
            "type": "object",
            "required": ["MerchantUniqueCode", "PaymentId", "Amount", "Status"],
            "properties": {
                "MerchantUniqueCode": {"type": "string"},
                "PaymentId": {"type": ["integer", "string"]},
                "Amount": {"type": "number", "minimum": 0},
                "Status": {"type": "integer"},
                "Scope": {"type": "string"},
            },
        }},
    },
}

HEALTH = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string", "enum": ["ok"]}},
}

READINESS = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "not_ready"]},
        "checks": {
            "type": "object",
            "required": ["ledger", "redis"],
            "additionalProperties": {"type": "string"},
        },
    },
}
