"""`python -m sandbox` served by gunicorn: one process, many threads, keep-alive connections.

Real providers keep connections open; werkzeug's development server closes every one, so each
call paid a TCP connect on both sides. gunicorn's `gthread` worker keeps them: idle connections
wait in its poller (not in a thread), each request runs in one of `THREADS` threads. One worker
process only: the sandbox's state (payments, faults, the call log) lives in its memory.

`start_in_thread` (werkzeug, in-process) stays for tests that need the app object beside them.
"""

from __future__ import annotations

import sys
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from sandbox.app import create_app

# Requests held at once: latency and faults (a held timeout) occupy a thread each.
THREADS = 256
# Longer than any client's idle expiry (httpx: 5 s), so the client closes an idle connection
# first and never sends a request on one the server is closing.
KEEPALIVE_SECONDS = 75
# A stopping sandbox does not wait long for held (faulted) requests.
GRACEFUL_SECONDS = 2


def _announce(server: Any) -> None:
    """Print the URL once listening (the port is the kernel's choice when 0 was asked)."""
    host, port = server.LISTENERS[0].sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"sandbox listening on http://{shown}:{port}", file=sys.stderr, flush=True)


class SandboxServer(BaseApplication):  # type: ignore[misc]
    """gunicorn configured in code: no config file, no command line of its own."""

    def __init__(self, host: str, port: int) -> None:
        self._bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        super().__init__()

    def load_config(self) -> None:
        for name, value in {
            "bind": [self._bind],
            "workers": 1,
            "worker_class": "gthread",
            "threads": THREADS,
            "keepalive": KEEPALIVE_SECONDS,
            "graceful_timeout": GRACEFUL_SECONDS,
            # No shared control socket under $HOME: several sandboxes run side by side.
            "control_socket_disable": True,
            "when_ready": _announce,
            "loglevel": "warning",
        }.items():
            self.cfg.set(name, value)

    def load(self) -> Flask:
        # Built in the worker process, after the fork: its threads (callback delivery) too.
        return create_app()


def serve(host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT (gunicorn's arbiter handles both), then exit."""
    SandboxServer(host, port).run()
