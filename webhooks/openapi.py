"""The OpenAPI 3 document of the receiver's routes."""

from __future__ import annotations

from typing import Any

from worker.domain.reconciliation import LEG_RECONCILIATION_KEYS, ReconciliationState, Source
from worker.domain.states import JobState, LegState, Provider, Reason
from worker.services.views import LEGS_PAGE_MAX

_AMOUNT = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "description": "decimal"}

_DIFFERENCE = {
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
_LEG_RECONCILIATION = {
    "type": "object",
    "required": sorted(LEG_RECONCILIATION_KEYS),
    "additionalProperties": False,
    "properties": {
        "source": {"type": "string", "enum": [s.value for s in Source]},
        "currency": {"type": "string", "description": "ISO 4217"},
        "expected": _FIGURES,
        "reported": {
            "type": "object",
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

_LEG = {
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

_JOB = {
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

_ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}

# A Paywall callback page as the receiver reads it (PROVIDERS.md). Fields Paywall sends that are
# not listed here (Type, DateTime, ErrorMessage, ...) are accepted and kept in the raw body.
_CALLBACK_PAGE = {
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

_HEALTH = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string", "enum": ["ok"]}},
}

_READINESS = {
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


def _answer(description: str, schema: str = "Error") -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


_PROTECTED = {
    "401": _answer("missing or wrong bearer token"),
    "503": _answer("CANCELFLOW_API_TOKEN is not set"),
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "cancelflow", "version": "1"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Job": _JOB,
                "Leg": _LEG,
                "LegReconciliation": _LEG_RECONCILIATION,
                "LegPage": {
                    "type": "object",
                    "required": ["legs", "next_cursor"],
                    "properties": {
                        "legs": {"type": "array", "items": {"$ref": "#/components/schemas/Leg"},
                                 "maxItems": LEGS_PAGE_MAX},
                        "next_cursor": {"type": ["string", "null"]},
                    },
                },
                "Difference": _DIFFERENCE,
                "Error": _ERROR,
                "CallbackPage": _CALLBACK_PAGE,
                "Health": _HEALTH,
                "Readiness": _READINESS,
                "JobList": {
                    "type": "object",
                    "required": ["jobs", "next_cursor"],
                    "properties": {
                        "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
                        "next_cursor": {"type": ["string", "null"]},
                    },
                },
            },
        },
        "paths": {
            "/api/v1/jobs/{id}": {
                "get": {
                    "summary": "One job with its legs and reconciliation",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {"name": "id", "in": "path", "required": True,
                         "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": _answer("the job", "Job"),
                        "404": _answer("no such job"),
                        **_PROTECTED,
                    },
                }
            },
            "/api/v1/jobs/{id}/legs": {
                "get": {
                    "summary": "A page of a job's legs, in order (from the job's "
                               "legs_next_cursor, or from the first leg without a cursor)",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {"name": "id", "in": "path", "required": True,
                         "schema": {"type": "string"}},
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                        {"name": "limit", "in": "query",
                         "schema": {"type": "integer", "minimum": 1, "maximum": LEGS_PAGE_MAX,
                                    "default": LEGS_PAGE_MAX}},
                    ],
                    "responses": {
                        "200": _answer("a page of legs", "LegPage"),
                        "400": _answer("a bad parameter, or a cursor of another job"),
                        "404": _answer("no such job"),
                        **_PROTECTED,
                    },
                }
            },
            "/api/v1/jobs": {
                "get": {
                    "summary": "Jobs, newest first",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {"name": "state", "in": "query",
                         "schema": {"type": "string", "enum": [s.value for s in JobState]}},
                        {"name": "limit", "in": "query",
                         "schema": {"type": "integer", "minimum": 1, "maximum": 500,
                                    "default": 50}},
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": _answer("a page of jobs", "JobList"),
                        "400": _answer("a bad parameter"),
                        **_PROTECTED,
                    },
                }
            },
            "/callbacks/paywall": {
                "post": {
                    "summary": "A Paywall callback page, verified by its Hash, stored, then "
                               "acknowledged",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/CallbackPage"}}},
                    },
                    "responses": {
                        "200": {
                            "description": "stored (or a duplicate, which changes nothing)",
                            "content": {"application/json": {"schema": {
                                "type": "object",
                                "required": ["received"],
                                "properties": {"received": {"const": True}},
                            }}},
                        },
                        "400": _answer("not a callback page"),
                        "401": _answer("Hash matches no configured key"),
                        "413": _answer("body over 16 MiB"),
                        "503": _answer("CANCELFLOW_PAYWALL_HASH_KEYS is not set"),
                    },
                }
            },
            "/healthz": {"get": {"summary": "process up", "responses": {
                "200": _answer("up", "Health")}}},
            "/readyz": {"get": {"summary": "ledger and Redis reachable", "responses": {
                "200": _answer("ready", "Readiness"),
                "503": _answer("not ready: says which is unavailable", "Readiness")}}},
            "/metrics": {"get": {
                "summary": "Prometheus text: callbacks by outcome, legs by provider and state, "
                           "jobs by state, provider call latency, reconciliation mismatches",
                "responses": {"200": {
                    "description": "Prometheus text exposition format 1.0.0",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }},
            }},
            "/api/v1/openapi.json": {"get": {"summary": "this document", "responses": {
                "200": {"description": "OpenAPI 3 document",
                        "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/": {"get": {
                "summary": "the dashboard (HTML, for people; sign in at /login)",
                "responses": {
                    "200": {"description": "the jobs page",
                            "content": {"text/html": {"schema": {"type": "string"}}}},
                    "302": {"description": "not signed in: to /login"},
                    "503": {"description": "CANCELFLOW_API_TOKEN is not set",
                            "content": {"text/html": {"schema": {"type": "string"}}}},
                },
            }},
        },
    }
