"""A provider call ends within its timeout even when every read is quick: a server trickling its
answer a byte at a time never trips httpx's per-read timeout, but the whole call is bounded."""

from __future__ import annotations

import socketserver
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from worker.bootstrap import http_client
from worker.providers.calls import NullObserver, call
from worker.providers.errors import TransportError
from worker.settings import Settings

BOUND = 0.6  # HTTP_TIMEOUT_SECONDS in these tests
TRICKLE_FOR = 4.0  # how long the server keeps trickling before it gives up
STEP = 0.1  # one byte every STEP seconds: well within the per-read timeout

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"


class Trickler(socketserver.BaseRequestHandler):
    """Sends the answer a byte at a time: the status line and headers too, or only the body."""

    server: TricklingServer

    def handle(self) -> None:
        self.request.recv(65536)
        head, body = (b"", HEAD + b" " * 100) if self.server.slow_headers else (HEAD, b" " * 100)
        self.request.sendall(head)
        started = time.monotonic()
        for byte in body:
            if time.monotonic() - started > TRICKLE_FOR:
                return
            try:
                self.request.sendall(bytes([byte]))
            except OSError:  # the client gave up: what the test wants
                return
            time.sleep(STEP)


class TricklingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    slow_headers = False


@pytest.fixture
def trickler() -> Iterator[TricklingServer]:
    server = TricklingServer(("127.0.0.1", 0), Trickler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def timed_call(server: TricklingServer) -> tuple[float, BaseException | None]:
    client = http_client(Settings(http_timeout_seconds=BOUND))
    host, port = server.server_address[:2]
    request = client.build_request("GET", f"http://{host!s}:{port}/slow")
    started = time.monotonic()
    try:
        call(client, request, lambda response: response.status_code, provider="test",
             operation="get", mutating=False, observer=NullObserver())
    except TransportError as exc:
        return time.monotonic() - started, exc
    finally:
        client.close()
    return time.monotonic() - started, None


@pytest.mark.parametrize("slow_headers", [False, True], ids=["body", "headers"])
def test_a_trickled_answer_is_cut_at_the_bound(
    trickler: TricklingServer, slow_headers: bool
) -> None:
    """Given a server that sends a byte every 0.1 s, the call fails as a timeout after about
    0.6 s (its bound), not when the server is done (4 s)."""
    trickler.slow_headers = slow_headers
    elapsed, error = timed_call(trickler)
    assert isinstance(error, TransportError), error
    assert isinstance(error.__cause__, httpx.TimeoutException), error.__cause__
    assert BOUND <= elapsed < BOUND + 0.5, elapsed

