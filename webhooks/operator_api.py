"""Operator actions over the API (issue 17), bearer-token protected like the status API:
``POST /api/v1/legs/{id}/retry`` (202), ``POST /api/v1/legs/{id}/resolve`` (200) and
``POST /api/v1/jobs/{id}/abandon`` (200), each answering the job. 409 when the leg or job is not
in a state that allows the action, 400 for a bad body, 404 for an unknown id."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask import Blueprint, abort, current_app, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from webhooks.api import require_token
from webhooks.apidoc import Reply, json_answer, operation
from webhooks.context import reads, units
from webhooks.models import AbandonBody, ResolveBody, RetryBody
from worker.domain.states import LegState
from worker.services.operator import (
    NotFound,
    OperatorError,
    abandon_job,
    resolve_leg,
    retry_leg,
)
from worker.services.views import JobDetail, get_job

F = TypeVar("F", bound=Callable[..., Any])

blueprint = Blueprint("operator_api", __name__, url_prefix="/api/v1")

ACTOR = "api"


M = TypeVar("M", bound=BaseModel)


def _body(model: type[M], *, optional: bool = False) -> M:
    """The request's JSON body read by ``model``; 400 saying what is wrong."""
    raw = request.get_data(cache=True)
    if optional and not raw.strip():
        return model()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, "the body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        abort(400, "; ".join(_problem(error) for error in exc.errors()))


def _problem(error: ErrorDetails) -> str:
    where = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown field: {where}"
    return f"{where}: {error['msg']}"


def _acted(action: Callable[[datetime], str], status: int) -> ResponseReturnValue:
    """Run the action (it answers its job's id); the job, or 404/409 with the reason."""
    try:
        job_id = action(datetime.now(UTC))
    except OperatorError as exc:
        abort(404 if isinstance(exc, NotFound) else 409, str(exc))
    found = get_job(reads(), job_id)
    assert found is not None
    return json_answer(found, status)


def _action(rule: str, summary: str, body: type[BaseModel], ok: int, ok_text: str,
            missing: str, *, body_required: bool = True) -> Callable[[F], F]:
    return operation(blueprint, "POST", rule, summary=summary, body=body,
                     body_required=body_required, replies={
                         ok: Reply(ok_text, JobDetail),
                         400: Reply("a bad body"),
                         404: Reply(missing),
                         409: Reply("the leg or job is not in a state that allows this (or "
                                    "changed meanwhile)"),
                     })


@_action("/legs/<leg_id>/retry", "Run a failed, unknown or rejected/provider_not_configured "
         "leg again (its target's state is read first where the provider allows)",
         RetryBody, 202, "the retry is under way; the job", "no such leg", body_required=False)
@require_token
def retry(leg_id: str) -> ResponseReturnValue:
    note = _body(RetryBody, optional=True).note
    dispatcher = current_app.extensions["cancelflow"]["dispatcher"]
    return _acted(lambda now: retry_leg(units(), dispatcher, leg_id, note=note, actor=ACTOR,
                                        now=now), 202)


@_action("/legs/<leg_id>/resolve", "End a leg as a person settled it outside cancelflow "
         "(reason resolved_by_operator)", ResolveBody, 200, "the job", "no such leg")
@require_token
def resolve(leg_id: str) -> ResponseReturnValue:
    body = _body(ResolveBody)
    return _acted(lambda now: resolve_leg(units(), leg_id, LegState(body.outcome),
                                          note=body.note, actor=ACTOR, now=now), 200)


@_action("/jobs/<job_id>/abandon", "End the job's legs not yet sent rejected/abandoned",
         AbandonBody, 200, "the job", "no such job")
@require_token
def abandon(job_id: str) -> ResponseReturnValue:
    note = _body(AbandonBody).note
    def act(now: datetime) -> str:
        abandon_job(units(), job_id, note=note, actor=ACTOR, now=now)
        return job_id

    return _acted(act, 200)
