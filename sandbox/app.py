"""Assembles the sandbox: one Flask app per call, every provider plugged in, a threaded server.

Adding a provider = one module exporting a `ProviderSpec`, listed in `PROVIDERS`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from sandbox import bambora, control, intercept, paywall, sixdot50
from sandbox.state import Clock, ProviderSpec, SandboxState, current_state, utc_now

PROVIDERS: tuple[ProviderSpec, ...] = (sixdot50.PROVIDER, paywall.PROVIDER, bambora.PROVIDER)


class _InOrderJSON(DefaultJSONProvider):
    """Keeps fields in the providers' documented order instead of sorting them."""

    sort_keys = False


def create_app(*, clock: Clock = utc_now) -> Flask:
    """A fresh sandbox app with fresh state (`app.extensions["sandbox"]`)."""
    app = Flask("sandbox")
    app.json = _InOrderJSON(app)
    app.extensions["sandbox"] = SandboxState(PROVIDERS, clock)
    for spec in PROVIDERS:
        app.register_blueprint(spec.blueprint)
        if spec.control is not None:
            app.register_blueprint(spec.control)
    app.register_blueprint(control.blueprint)
    app.register_error_handler(control.ControlError, control.refuse)
    app.register_error_handler(HTTPException, _http_error)
    return app


def _http_error(error: HTTPException) -> tuple[Any, int]:
    """JSON errors everywhere; under a provider's prefix, in that provider's error shape."""
    status = error.code or 500
    state = current_state()
    spec = state.provider_for_path(request.path)
    if spec is None:
        return {"error": error.description}, status
    if request.routing_exception is not None:
        # A wrong path or method is still a provider call worth seeing in the call log.
        with state.lock:
            call = state.calls.open(
                at=state.clock(),
                provider=spec.name,
                operation=None,
                method=request.method,
                path=request.path,
                target=None,
            )
            call.status = status
    return spec.error_body(status, error.name), status


class SandboxRequestHandler(WSGIRequestHandler):
    """werkzeug's handler, but a faulted answer ends the connection at once, writing nothing."""

    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        if isinstance(error, intercept.FaultAbortError):
            self.close_connection = True
            # Closing here, before socketserver's shutdown(SHUT_WR), so no FIN precedes the RST.
            self.rfile.close()
            self.connection.close()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Quiet: `/_sandbox/calls` is the sandbox's request log."""


@dataclass
class RunningSandbox:
    """A sandbox served by a background thread."""

    server: BaseWSGIServer
    thread: threading.Thread
    state: SandboxState

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        host = self.server.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def shutdown(self) -> None:
        """Stop serving, end any held (faulted) requests and wait for the thread."""
        self.state.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def start_in_thread(app: Flask, host: str = "127.0.0.1", port: int = 0) -> RunningSandbox:
    """Serve `app` with werkzeug's threaded server in a daemon thread; port 0 picks a free one."""
    state: SandboxState = app.extensions["sandbox"]
    state.stopping.clear()
    server = make_server(host, port, app, threaded=True, request_handler=SandboxRequestHandler)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="sandbox-server",
        daemon=True,
    )
    thread.start()
    return RunningSandbox(server, thread, state)
