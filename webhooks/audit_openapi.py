"""The OpenAPI description of the audit export (issue 17): ``/api/v1/jobs/{id}/attempts``."""

from __future__ import annotations

from typing import Any

from worker.services.audit import FIELDS


def _answer(description: str, schema: str = "Error") -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


_NULLABLE_TEXT = {"type": ["string", "null"]}

ATTEMPT: dict[str, Any] = {
    "type": "object",
    "required": list(FIELDS),
    "description": "one provider call; never its response body",
    "properties": {
        "attempt_id": {"type": "integer"},
        "leg_id": {"type": "string"},
        "provider": {"type": "string"},
        "operation": {"type": "string"},
        "started_at": {"type": "string", "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
        "http_status": {"type": ["integer", "null"]},
        "outcome": _NULLABLE_TEXT,
        "provider_code": _NULLABLE_TEXT,
        "request_id": _NULLABLE_TEXT,
        "duration_ms": {"type": ["number", "null"]},
    },
}

ATTEMPT_EXPORT: dict[str, Any] = {
    "type": "object",
    "required": ["job_id", "attempts", "note"],
    "properties": {
        "job_id": {"type": "string"},
        "attempts": {"type": "array", "items": {"$ref": "#/components/schemas/Attempt"}},
        "note": {"type": ["string", "null"],
                 "description": "why there are no calls, when they were pruned"},
    },
}

_TEXT = {"schema": {"type": "string"}}

AUDIT_PATHS: dict[str, Any] = {
    "/api/v1/jobs/{id}/attempts": {"get": {
        "summary": "Every provider call of every leg of the job, by start time (JSON, CSV with "
                   "a header row, or NDJSON: ?format= or else Accept); streamed",
        "security": [{"bearer": []}],
        "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "format", "in": "query",
             "schema": {"type": "string", "enum": ["json", "csv", "ndjson"],
                        "default": "json"}},
        ],
        "responses": {
            "200": {
                "description": "the job's calls (X-Cancelflow-Note says when they were pruned)",
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/AttemptExport"}},
                    "text/csv": _TEXT,
                    "application/x-ndjson": _TEXT,
                },
            },
            "400": _answer("an unknown format"),
            "404": _answer("no such job"),
            "401": _answer("missing or wrong bearer token"),
            "503": _answer("CANCELFLOW_API_TOKEN is not set"),
        },
    }},
}
