"""Operator actions over the API (issue 17), bearer-token protected like the status API:
``POST /api/v1/legs/{id}/retry`` (202), ``POST /api/v1/legs/{id}/resolve`` (200) and
``POST /api/v1/jobs/{id}/abandon`` (200), each answering the job. 409 when the leg or job is not
in a state that allows the action, 400 for a bad body, 404 for an unknown id."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from webhooks.api import require_token
from webhooks.context import reads, units
from worker.domain.states import LegState
from worker.services.operator import (
    NOTE_MAX,
    NotFound,
    OperatorError,
    abandon_job,
    resolve_leg,
    retry_leg,
)
from worker.services.views import get_job

blueprint = Blueprint("operator_api", __name__, url_prefix="/api/v1")

ACTOR = "api"


def _body(allowed: set[str], *, optional: bool = False) -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if optional and not raw.strip():
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, "the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        abort(400, f"unknown field(s): {', '.join(unknown)}")
    return body


def _note(body: dict[str, Any], *, required: bool) -> str | None:
    note = body.get("note")
    if note is None and not required:
        return None
    if not isinstance(note, str) or (required and not note.strip()):
        abort(400, "note must be a non-empty string" if required else "note must be a string")
    if len(note) > NOTE_MAX or "\x00" in note:
        abort(400, f"note must be at most {NOTE_MAX} characters, without NUL")
    return note


def _acted(action: Callable[[datetime], str], status: int) -> ResponseReturnValue:
    """Run the action (it answers its job's id); the job, or 404/409 with the reason."""
    try:
        job_id = action(datetime.now(UTC))
    except OperatorError as exc:
        abort(404 if isinstance(exc, NotFound) else 409, str(exc))
    found = get_job(reads(), job_id)
    assert found is not None
    return jsonify(found), status


@blueprint.post("/legs/<leg_id>/retry")
@require_token
def retry(leg_id: str) -> ResponseReturnValue:
    note = _note(_body({"note"}, optional=True), required=False)
    dispatcher = current_app.extensions["cancelflow"]["dispatcher"]
    return _acted(lambda now: retry_leg(units(), dispatcher, leg_id, note=note, actor=ACTOR,
                                        now=now), 202)


@blueprint.post("/legs/<leg_id>/resolve")
@require_token
def resolve(leg_id: str) -> ResponseReturnValue:
    body = _body({"outcome", "note"})
    outcome = body.get("outcome")
    if outcome not in ("cancelled", "rejected"):
        abort(400, 'outcome must be "cancelled" or "rejected"')
    note = _note(body, required=True)
    assert note is not None
    return _acted(lambda now: resolve_leg(units(), leg_id, LegState(outcome), note=note,
                                          actor=ACTOR, now=now), 200)


@blueprint.post("/jobs/<job_id>/abandon")
@require_token
def abandon(job_id: str) -> ResponseReturnValue:
    note = _note(_body({"note"}), required=True)
    assert note is not None
    def act(now: datetime) -> str:
        abandon_job(units(), job_id, note=note, actor=ACTOR, now=now)
        return job_id

    return _acted(act, 200)
