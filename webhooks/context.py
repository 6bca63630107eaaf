"""Access to what ``create_app`` built, from inside a request."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import Engine

from webhooks.login_throttle import LoginThrottle
from worker.settings import Settings


def settings() -> Settings:
    value: Settings = current_app.extensions["cancelflow"]["settings"]
    return value


def login_throttle() -> LoginThrottle:
    value: LoginThrottle = current_app.extensions["cancelflow"]["login_throttle"]
    return value


def engine() -> Engine:
    value: Engine = current_app.extensions["cancelflow"]["engine"]
    return value
