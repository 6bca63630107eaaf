"""The Flask app factory. Nothing is built at import time."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from webhooks import metrics
from webhooks.apidoc import json_answer
from webhooks.login_throttle import LoginThrottle
from webhooks.models import ErrorBody
from worker.bootstrap import log_configuration, open_ledger
from worker.logconfig import configure_logging, host_configured_logging
from worker.settings import Settings, load_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, dispatcher: Any = None) -> Flask:
    """Build the receiver; brings the ledger's schema up to date first.

    Under gunicorn (or any host that has not set up logging) the app's lines go to stderr beside
    gunicorn's own, in ``CANCELFLOW_LOG_FORMAT``; a test runner's logging is left alone.
    """
    settings = settings or load_settings()
    if not host_configured_logging():
        configure_logging(settings)
    app = Flask(__name__)
    if settings.trusted_proxies:
        # The client's address (the sign-in throttle counts by it) and scheme, as the proxies
        # in front saw them; without trusted proxies these headers are anyone's to forge.
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    # Larger bodies are refused with 413 before they are read.
    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024
    ledger = open_ledger(settings)
    from worker.celery_app import create_celery
    from worker.dispatch import CeleryDispatcher

    app.extensions["cancelflow"] = {
        "settings": settings,
        "engine": ledger.engine,
        "units": ledger.units,
        "audit": ledger.audit,
        "reads": ledger.reads,
        "dispatcher": dispatcher or CeleryDispatcher(create_celery(settings)),
        "metrics": metrics.create_metrics(ledger.reads),
        "login_throttle": LoginThrottle(),
    }

    # issue 17: operator_forms adds its routes to the dashboard's blueprint.
    from webhooks import api, audit_api, callbacks, dashboard, health, operator_api, operator_forms

    assert operator_forms.blueprint is dashboard.blueprint

    app.register_blueprint(health.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(operator_api.blueprint)  # issue 17
    app.register_blueprint(audit_api.blueprint)  # issue 17: audit export
    app.register_blueprint(callbacks.blueprint)
    app.register_blueprint(dashboard.blueprint)
    app.register_blueprint(metrics.blueprint)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> ResponseReturnValue:
        return json_answer(ErrorBody(error=exc.name.lower().replace(" ", "_"),
                                     detail=exc.description or exc.name), exc.code or 500)

    log_configuration(settings, "receiver")
    return app
