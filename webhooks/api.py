"""The status API: ``/api/v1/jobs``, ``/api/v1/jobs/{id}`` and ``/api/v1/jobs/{id}/legs``,
bearer-token protected. Each answer reads a bounded number of legs, whatever the jobs' sizes."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterator
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import Blueprint, Response, abort, jsonify, request, stream_with_context
from flask.typing import ResponseReturnValue

from webhooks.apidoc import SECURED, Reply, json_answer, openapi_document, operation
from webhooks.context import reads, settings
from webhooks.models import JobsQuery, LegsQuery
from worker.domain.request_schema import request_schema
from worker.services.views import (
    LEGS_PAGE_MAX,
    JobDetail,
    JobList,
    LegPage,
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

    setattr(wrapper, SECURED, True)  # the OpenAPI document lists the bearer requirement
    return wrapper


@operation(blueprint, "GET", "/jobs/<job_id>",
           summary="One job with its legs, reconciliation, events and notifications",
           replies={200: Reply("the job", JobDetail), 404: Reply("no such job")})
@require_token
def job(job_id: str) -> ResponseReturnValue:
    # No job id holds a NUL, and PostgreSQL refuses one in a text parameter (a 500).
    found = None if "\x00" in job_id else get_job(reads(), job_id)
    if found is None:
        abort(404, "no such job")
    return json_answer(found)


@operation(blueprint, "GET", "/jobs/<job_id>/legs", query=LegsQuery,
           summary="A page of a job's legs, in order (from the job's legs_next_cursor, or from "
                   "the first leg without a cursor)",
           replies={200: Reply("a page of legs", LegPage),
                    400: Reply("a bad parameter, or a cursor of another job"),
                    404: Reply("no such job")})
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
    return json_answer(page)


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


@operation(blueprint, "GET", "/jobs", query=JobsQuery, summary="Jobs, newest first",
           replies={200: Reply("a page of jobs", JobList), 400: Reply("a bad parameter")})
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
    def body() -> Iterator[str]:
        # A JobList, streamed a few jobs at a time: 500 jobs of 100 listed legs each are ~30 MB
        # of JSON, which a whole-body answer would hold (several times over) in memory.
        yield '{"jobs":['
        for index, job in enumerate(listed):
            yield ("," if index else "") + job.model_dump_json()
        yield f'],"next_cursor":{json.dumps(next_cursor)}}}'

    return Response(stream_with_context(body()), mimetype="application/json")


@operation(blueprint, "GET", "/openapi.json", summary="this document",
           replies={200: Reply("OpenAPI 3.1 document", None, json_object=True)})
def openapi() -> ResponseReturnValue:
    return jsonify(openapi_document())


@operation(blueprint, "GET", "/schema/cancellation-request.json",
           summary="the JSON Schema of the producer message's request (kwargs['request'] of "
                   "task cancellations.submit)",
           replies={200: Reply("JSON Schema draft 2020-12", None, json_object=True)})
def cancellation_request_schema() -> ResponseReturnValue:
    """The producer message's JSON Schema: public, like the OpenAPI document."""
    return jsonify(request_schema())
