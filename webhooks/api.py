"""The status API: ``/api/v1/jobs``, ``/api/v1/jobs/{id}`` and ``/api/v1/jobs/{id}/legs``,
bearer-token protected. Each answer reads a bounded number of legs, whatever the jobs' sizes."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from flask import Blueprint, Response, abort, current_app, jsonify, request, stream_with_context
from flask.typing import ResponseReturnValue

from webhooks.context import reads, settings
from webhooks.openapi import openapi_document
from worker.domain.request_schema import request_schema
from worker.services.views import (
    LEGS_PAGE_MAX,
    check_jobs_cursor,
    get_job,
    get_legs,
    job_filter,
    stream_jobs,
)

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")

P = ParamSpec("P")
R = TypeVar("R")


def require_token(view: Callable[P, R]) -> Callable[P, R]:
    """503 until API_TOKEN is set; 401 without the right bearer token (constant-time compare)."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        token = settings().api_token
        if token is None:
            abort(503, "CANCELFLOW_API_TOKEN is not set")
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.get_secret_value().encode()
        ):
            abort(401, "a valid bearer token is required")
        return view(*args, **kwargs)

    return wrapper


@blueprint.get("/jobs/<job_id>")
@require_token
def job(job_id: str) -> ResponseReturnValue:
    # No job id holds a NUL, and PostgreSQL refuses one in a text parameter (a 500).
    found = None if "\x00" in job_id else get_job(reads(), job_id)
    if found is None:
        abort(404, "no such job")
    return jsonify(found)


@blueprint.get("/jobs/<job_id>/legs")
@require_token
def job_legs(job_id: str) -> ResponseReturnValue:
    """A page of a job's legs, in order; ``next_cursor`` is null on the last page."""
    limit = _int_arg("limit", LEGS_PAGE_MAX, 1, LEGS_PAGE_MAX)
    if "\x00" in job_id:  # see job(): no job id holds one
        abort(404, "no such job")
    try:
        # A cursor only ever reaches the ledger as the position it decodes to.
        page = get_legs(reads(), job_id, cursor=request.args.get("cursor") or None, limit=limit)
    except ValueError:
        abort(400, "cursor is not one this API gave out for this job")
    if page is None:
        abort(404, "no such job")
    return jsonify({"legs": page.legs, "next_cursor": page.next_cursor})


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        abort(400, f"{name} must be an integer")
    if not low <= value <= high:
        abort(400, f"{name} must be between {low} and {high}")
    return value


def _cursor_arg() -> str | None:
    """The cursor, if it can be one this API gave out; 400 otherwise (check_jobs_cursor)."""
    cursor = request.args.get("cursor")
    if not cursor:
        return None
    try:
        check_jobs_cursor(reads(), cursor)
    except ValueError:
        abort(400, "cursor is not one this API gave out")
    return cursor


# The jobs list's filters (query parameters), each with an index behind it.
FILTERS = ("state", "provider", "target", "idempotency_key", "since", "until")


@blueprint.get("/jobs")
@require_token
def jobs() -> ResponseReturnValue:
    try:
        where = job_filter(**{name: request.args.get(name) or None for name in FILTERS})
    except ValueError as exc:
        abort(400, str(exc))
    limit = _int_arg("limit", 50, 1, 500)
    try:
        next_cursor, listed = stream_jobs(reads(), where=where, limit=limit,
                                          cursor=_cursor_arg())
    except ValueError:
        abort(400, "cursor is not one this API gave out")
    provider = current_app.json

    def dumps(value: Any) -> str:
        return provider.dumps(value, separators=(",", ":"))  # compact, as jsonify answers

    def body() -> Iterator[str]:
        # Streamed a few jobs at a time: 500 jobs of 100 listed legs each are ~30 MB of JSON,
        # which a whole-body answer would hold (several times over) in the worker's memory.
        yield '{"jobs": ['
        for index, job in enumerate(listed):
            yield ("," if index else "") + dumps(job)
        yield f'], "next_cursor": {dumps(next_cursor)}}}'

    return Response(stream_with_context(body()), mimetype="application/json")


@blueprint.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    return jsonify(openapi_document())


@blueprint.get("/schema/cancellation-request.json")
def cancellation_request_schema() -> ResponseReturnValue:
    """The producer message's JSON Schema: public, like the OpenAPI document."""
    return jsonify(request_schema())
