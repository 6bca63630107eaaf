"""The OpenAPI 3 document of the receiver's routes."""

from __future__ import annotations

from typing import Any

from worker.domain.states import JobState, LegState, Provider, Reason

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
        "reconciliation": {"type": ["object", "null"]},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}

_JOB = {
    "type": "object",
    "required": [
        "id", "idempotency_key", "state", "created_at", "updated_at", "errors", "legs",
        "reconciliation",
    ],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "idempotency_key": {"type": ["string", "null"]},
        "state": {"type": "string", "enum": [s.value for s in JobState]},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "errors": {"type": "array", "items": {"type": "object"}},
        "legs": {"type": "array", "items": {"$ref": "#/components/schemas/Leg"}},
        "reconciliation": {
            "type": "object",
            "required": ["state", "differences"],
            "properties": {
                "state": {"type": "string"},
                "differences": {
                    "type": "array", "items": {"$ref": "#/components/schemas/Difference"}
                },
            },
        },
    },
}

_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
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
                "Difference": _DIFFERENCE,
                "Error": _ERROR,
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
            "/healthz": {"get": {"summary": "process up", "responses": {"200": {
                "description": "up"}}}},
            "/readyz": {"get": {"summary": "ledger and Redis reachable", "responses": {
                "200": {"description": "ready"}, "503": {"description": "not ready"}}}},
            "/api/v1/openapi.json": {"get": {"summary": "this document", "responses": {
                "200": {"description": "OpenAPI 3 document"}}}},
        },
    }
