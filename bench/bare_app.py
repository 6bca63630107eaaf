"""The baseline for the callback benchmark: a Flask endpoint that only parses the body."""

from __future__ import annotations

import json

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/callbacks/paywall")
    def parse_only() -> ResponseReturnValue:
        json.loads(request.get_data())
        return jsonify(received=True)

    return app
