"""Access to what ``create_app`` built, from inside a request."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import Engine

from worker.settings import Settings


def settings() -> Settings:
    value: Settings = current_app.extensions["cancelflow"]["settings"]
    return value


def engine() -> Engine:
    value: Engine = current_app.extensions["cancelflow"]["engine"]
    return value
