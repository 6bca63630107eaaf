"""The OpenAPI description of the operator actions and of a job's events (issue 17)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.domain.events import EventType
from worker.services.operator import NOTE_MAX

EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["type", "at", "note", "leg", "actor", "details"],
    "properties": {
        "type": {"type": "string", "examples": [t.value for t in EventType]},
        "at": {"type": "string", "format": "date-time"},
        "note": {"type": ["string", "null"]},
        "leg": {"type": ["string", "null"]},
        "actor": {"type": ["string", "null"]},
        "details": {"type": "object"},
    },
}

EVENTS_PROPERTY: dict[str, Any] = {
    "type": "array", "items": {"$ref": "#/components/schemas/Event"},
    "description": "operator actions, idempotency conflicts and notifications, newest last "
                   "(a single job's answer only)",
}



def with_events(job: Mapping[str, Any]) -> dict[str, Any]:
    """The Job schema with its ``events`` property."""
    return {**job, "properties": {**job["properties"], "events": EVENTS_PROPERTY}}


_NOTE = {"type": "string", "minLength": 1, "maxLength": NOTE_MAX}


def _answer(description: str, schema: str = "Error") -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _action(summary: str, ok: str, ok_text: str, body: dict[str, Any] | None,
            body_required: bool, gone: str) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "security": [{"bearer": []}],
        "parameters": [{"name": "id", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {
            ok: _answer(ok_text, "Job"),
            "400": _answer("a bad body"),
            "404": _answer(gone),
            "409": _answer("the leg or job is not in a state that allows this (or changed "
                           "meanwhile)"),
            "401": _answer("missing or wrong bearer token"),
            "503": _answer("CANCELFLOW_API_TOKEN is not set"),
        },
    }
    if body is not None:
        operation["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": body}},
        }
    return {"post": operation}


OPERATOR_PATHS: dict[str, Any] = {
    "/api/v1/legs/{id}/retry": _action(
        "Run a failed, unknown or rejected/provider_not_configured leg again (its target's "
        "state is read first where the provider allows)", "202", "the retry is under way; the job",
        {"type": "object", "additionalProperties": False,
         "properties": {"note": {"type": "string", "maxLength": NOTE_MAX}}},
        False, "no such leg"),
    "/api/v1/legs/{id}/resolve": _action(
        "End a leg as a person settled it outside cancelflow (reason resolved_by_operator)",
        "200", "the job",
        {"type": "object", "additionalProperties": False, "required": ["outcome", "note"],
         "properties": {"outcome": {"enum": ["cancelled", "rejected"]}, "note": _NOTE}},
        True, "no such leg"),
    "/api/v1/jobs/{id}/abandon": _action(
        "End the job's legs not yet sent rejected/abandoned", "200", "the job",
        {"type": "object", "additionalProperties": False, "required": ["note"],
         "properties": {"note": _NOTE}},
        True, "no such job"),
}
