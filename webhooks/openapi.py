"""The OpenAPI 3 document of the receiver's routes."""

from __future__ import annotations

from typing import Any

from webhooks import openapi_schemas as schemas
from webhooks.audit_openapi import ATTEMPT, ATTEMPT_EXPORT, AUDIT_PATHS
from webhooks.operator_openapi import EVENT, OPERATOR_PATHS, with_events
from worker.domain.states import JobState, Provider
from worker.services.views import LEGS_PAGE_MAX


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
                "Job": with_events(schemas.JOB),  # issue 17
                "Event": EVENT,  # issue 17
                "Attempt": ATTEMPT,  # issue 17: audit export
                "AttemptExport": ATTEMPT_EXPORT,
                "Notification": schemas.NOTIFICATION,
                "Leg": schemas.LEG,
                "LegReconciliation": schemas.LEG_RECONCILIATION,
                "LegPage": {
                    "type": "object",
                    "required": ["legs", "next_cursor"],
                    "properties": {
                        "legs": {"type": "array", "items": {"$ref": "#/components/schemas/Leg"},
                                 "maxItems": LEGS_PAGE_MAX},
                        "next_cursor": {"type": ["string", "null"]},
                    },
                },
                "Difference": schemas.DIFFERENCE,
                "Error": schemas.ERROR,
                "CallbackPage": schemas.CALLBACK_PAGE,
                "Health": schemas.HEALTH,
                "Readiness": schemas.READINESS,
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
            **OPERATOR_PATHS,  # issue 17
            **AUDIT_PATHS,  # issue 17: audit export
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
                        {"name": "provider", "in": "query",
                         "schema": {"type": "string", "enum": [p.value for p in Provider]}},
                        {"name": "target", "in": "query", "description":
                         "a batch id, merchant unique code or payment reference, exactly",
                         "schema": {"type": "string", "maxLength": 200}},
                        {"name": "idempotency_key", "in": "query",
                         "schema": {"type": "string", "maxLength": 200}},
                        {"name": "since", "in": "query", "description":
                         "accepted at or after (ISO-8601 with its offset)",
                         "schema": {"type": "string", "format": "date-time"}},
                        {"name": "until", "in": "query", "description":
                         "accepted before (ISO-8601 with its offset)",
                         "schema": {"type": "string", "format": "date-time"}},
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
            "/api/v1/schema/cancellation-request.json": {"get": {
                "summary": "the JSON Schema of the producer message's request "
                           "(kwargs['request'] of task cancellations.submit)",
                "responses": {"200": {
                    "description": "JSON Schema draft 2020-12",
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
