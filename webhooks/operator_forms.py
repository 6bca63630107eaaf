"""Operator actions on the dashboard's job page (issue 17): retry, resolve, abandon.

The routes join the dashboard's blueprint (its sign-in, error pages and security headers). Each
form carries the session's CSRF token, compared in constant time: a POST without it, or with
another session's, is refused (403) before anything changes. (The session cookie is also
SameSite=Lax; the token is what stops a same-site page or a forgotten tab from acting.)
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime
from typing import Any, NoReturn

from flask import abort, current_app, redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from webhooks.context import reads, units
from webhooks.dashboard import blueprint, require_operator
from worker.domain.states import LegState, Reason
from worker.services import operator as actions
from worker.services.views import JOB_EVENTS, event_view

__all__ = ["blueprint", "can_resolve", "can_retry", "csrf_token", "events_of"]

ACTOR = "dashboard"
CSRF_FIELD = "csrf_token"
_SESSION_KEY = "csrf"


def csrf_token() -> str:
    """This session's CSRF token, made on first use."""
    token = session.get(_SESSION_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[_SESSION_KEY] = token
    return token


def _check_csrf() -> None:
    expected = session.get(_SESSION_KEY)
    given = request.form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not hmac.compare_digest(
            given.encode(), expected.encode()):
        abort(403, "This form's security token is missing or out of date: reload the page "
                   "and try again.")


def _note(*, required: bool) -> str | None:
    note = request.form.get("note", "").strip()
    if not note:
        if required:
            abort(400, "Say why in the note: it is kept with the job.")
        return None
    if len(note) > actions.NOTE_MAX or "\x00" in note:
        abort(400, f"The note must be at most {actions.NOTE_MAX} characters.")
    return note


def _done(job_id: str) -> ResponseReturnValue:
    return redirect(url_for("dashboard.job", job_id=job_id, _anchor="events"), 303)


def _refused(exc: actions.OperatorError) -> NoReturn:
    abort(404 if isinstance(exc, actions.NotFound) else 409, str(exc))


def can_retry(leg: dict[str, Any]) -> bool:
    return leg["state"] in (LegState.FAILED, LegState.UNKNOWN) or (
        leg["state"] == LegState.REJECTED and leg["reason"] == Reason.PROVIDER_NOT_CONFIGURED)


def can_resolve(leg: dict[str, Any]) -> bool:
    return leg["state"] not in (LegState.IN_FLIGHT, LegState.CANCELLED, LegState.REFUNDED) and (
        leg["reason"] != Reason.RESOLVED_BY_OPERATOR)


def events_of(job_id: str) -> list[dict[str, Any]]:
    with reads().snapshot() as views:
        return [event_view(e).model_dump(mode="json")
                for e in views.events_of(job_id, JOB_EVENTS)]


@blueprint.context_processor
def _operator_helpers() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "csrf_field": CSRF_FIELD, "can_retry": can_retry,
            "can_resolve": can_resolve, "job_events": events_of}


@blueprint.post("/jobs/<job_id>/legs/<leg_id>/retry")
@require_operator
def retry_form(job_id: str, leg_id: str) -> ResponseReturnValue:
    _check_csrf()
    try:
        owner = actions.retry_leg(
            units(), current_app.extensions["cancelflow"]["dispatcher"], leg_id,
            note=_note(required=False), actor=ACTOR, now=datetime.now(UTC))
    except actions.OperatorError as exc:
        _refused(exc)
    return _done(owner)


@blueprint.post("/jobs/<job_id>/legs/<leg_id>/resolve")
@require_operator
def resolve_form(job_id: str, leg_id: str) -> ResponseReturnValue:
    _check_csrf()
    outcome = request.form.get("outcome")
    if outcome not in ("cancelled", "rejected"):
        abort(400, "Choose cancelled or rejected.")
    note = _note(required=True)
    assert note is not None
    try:
        owner = actions.resolve_leg(units(), leg_id, LegState(outcome), note=note,
                                    actor=ACTOR, now=datetime.now(UTC))
    except actions.OperatorError as exc:
        _refused(exc)
    return _done(owner)


@blueprint.post("/jobs/<job_id>/abandon")
@require_operator
def abandon_form(job_id: str) -> ResponseReturnValue:
    _check_csrf()
    note = _note(required=True)
    assert note is not None
    try:
        actions.abandon_job(units(), job_id, note=note, actor=ACTOR, now=datetime.now(UTC))
    except actions.OperatorError as exc:
        _refused(exc)
    return _done(job_id)
