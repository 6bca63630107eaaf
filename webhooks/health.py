"""Liveness and readiness."""

from __future__ import annotations

import redis
from flask import Blueprint
from flask.typing import ResponseReturnValue

from webhooks.apidoc import Reply, json_answer, operation
from webhooks.context import reads, settings
from webhooks.models import Health, Readiness, ReadinessChecks

blueprint = Blueprint("health", __name__)


@operation(blueprint, "GET", "/healthz", summary="process up", replies={200: Reply("up", Health)})
def healthz() -> ResponseReturnValue:
    return json_answer(Health(status="ok"))


@operation(blueprint, "GET", "/readyz", summary="ledger and Redis reachable", replies={
    200: Reply("ready", Readiness), 503: Reply("not ready: says which is unavailable", Readiness)})
def readyz() -> ResponseReturnValue:
    """Ready when the ledger and Redis both answer; says which one does not."""
    checks: dict[str, str] = {}
    try:
        reads().ping()
        checks["ledger"] = "ok"
    except Exception as exc:  # any failure means not ready; the class name says which
        checks["ledger"] = f"unavailable: {type(exc).__name__}"
    try:
        client = redis.Redis.from_url(
            settings().redis_url, socket_timeout=2, socket_connect_timeout=2
        )
        try:
            client.ping()
        finally:
            client.close()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"unavailable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return json_answer(Readiness(status="ready" if ready else "not_ready",
                                 checks=ReadinessChecks(**checks)), 200 if ready else 503)
