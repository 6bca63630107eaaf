"""Fixtures for the sandbox's tests: an app on a settable clock, and its test client.

A test module says when its clock starts with a module-level ``START``.
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sandbox import create_app
from tests.support import Clock


@pytest.fixture
def clock(request: pytest.FixtureRequest) -> Clock:
    return Clock(request.module.START)


@pytest.fixture
def app(clock: Clock) -> Flask:
    return create_app(clock=clock)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
