"""Liveness and readiness."""

from __future__ import annotations

import redis
from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from webhooks.context import reads, settings

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@blueprint.get("/readyz")
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
    return jsonify(status="ready" if ready else "not_ready", checks=checks), 200 if ready else 503
