"""The sandbox's fault machinery: the pure fault book, the control API, and faults on the wire."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from sandbox import create_app, start_in_thread
from sandbox.faults import DEFAULT_TIMEOUT_MS, FaultBook, FaultError, FaultSpec, parse_fault

OPERATIONS = {"sixdot50": ("get_token", "cancel_batch", "get_batch", "list_payments")}
CREDENTIALS = {"key": "sandbox-key", "secret": "sandbox-secret"}
REPO = Path(__file__).resolve().parents[2]


def spec(**fields: Any) -> FaultSpec:
    return parse_fault(
        {"provider": "sixdot50", "action": "status", "status": 503, **fields}, OPERATIONS
    )


def hits(
    book: FaultBook, calls: int, operation: str = "cancel_batch", target: str = "b1"
) -> list[str | None]:
    """Which fault (if any) each of `calls` consecutive calls gets."""
    taken = [book.take("sixdot50", operation, target) for _ in range(calls)]
    return [fault.id if fault else None for fault in taken]


# --- the fault book: plain code ----------------------------------------------------------


def test_a_fault_applies_once_by_default_then_expires() -> None:
    """`times` defaults to 1: the next matching call gets the fault, later ones do not."""
    book = FaultBook()
    book.add(spec(operation="cancel_batch"))

    assert hits(book, 3) == ["f1", None, None]
    assert book.active() == []


def test_after_skips_the_first_matching_calls() -> None:
    """`after: 2, times: 2` hits the third and fourth matching calls only."""
    book = FaultBook()
    book.add(spec(operation="cancel_batch", after=2, times=2))

    assert hits(book, 5) == [None, None, "f1", "f1", None]


def test_times_zero_never_expires() -> None:
    """`times: 0` applies to every matching call until deleted."""
    book = FaultBook()
    book.add(spec(times=0))

    assert hits(book, 4) == ["f1"] * 4
    assert book.active()[0].applied == 4


def test_first_fault_in_creation_order_wins_but_every_fault_counts_the_call() -> None:
    """Creation order decides; `after` counts calls another fault took too."""
    book = FaultBook()
    book.add(spec(operation="cancel_batch", times=2))
    book.add(spec(operation="*", after=1, times=0))

    assert hits(book, 4) == ["f1", "f1", "f2", "f2"]


def test_operation_and_target_filters() -> None:
    """A fault only sees calls for its operation and, if set, its target."""
    book = FaultBook()
    book.add(spec(operation="get_batch", target="b2", times=0))

    assert hits(book, 1, "cancel_batch", "b2") == [None]
    assert hits(book, 1, "get_batch", "b1") == [None]
    assert hits(book, 1, "get_batch", "b2") == ["f1"]
    assert book.take("paywall", "get_batch", "b2") is None


def test_probability_is_reproducible_with_a_seed() -> None:
    """The same seed gives the same pattern of hits; probability 0 never hits."""
    patterns = []
    for _ in range(2):
        book = FaultBook()
        book.add(spec(probability=0.5, seed=7, times=0))
        patterns.append(hits(book, 40))
    never = FaultBook()
    never.add(spec(probability=0.0, times=0))

    assert patterns[0] == patterns[1]
    assert 5 < patterns[0].count("f1") < 35
    assert hits(never, 20) == [None] * 20


@given(after=st.integers(0, 5), times=st.integers(1, 5), calls=st.integers(0, 15))
def test_after_and_times_select_one_contiguous_run(after: int, times: int, calls: int) -> None:
    """Calls after+1 .. after+times get the fault, and no others."""
    book = FaultBook()
    book.add(spec(after=after, times=times))

    got = hits(book, calls)

    assert got == ["f1" if after <= n < after + times else None for n in range(calls)]


def test_parse_fault_fills_in_defaults() -> None:
    """Defaults: any operation, once, no delay or effect; timeouts hold 30 s; delays take effect."""
    status = spec()
    timeout = parse_fault({"provider": "sixdot50", "action": "timeout"}, OPERATIONS)
    delay = parse_fault({"provider": "sixdot50", "action": "delay", "delay_ms": 5}, OPERATIONS)

    assert (status.operation, status.times, status.after, status.effect) == ("*", 1, 0, False)
    assert (timeout.delay_ms, timeout.effect) == (DEFAULT_TIMEOUT_MS, False)
    assert delay.effect is True


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"provider": "nowhere", "action": "reset"},
        {"provider": "sixdot50", "operation": "refund", "action": "reset"},
        {"provider": "sixdot50", "action": "explode"},
        {"provider": "sixdot50", "action": "status"},
        {"provider": "sixdot50", "action": "status", "status": 42},
        {"provider": "sixdot50", "action": "reset", "status": 500},
        {"provider": "sixdot50", "action": "status", "status": 500, "headers": {"a": 1}},
        {"provider": "sixdot50", "action": "delay", "effect": False},
        {"provider": "sixdot50", "action": "reset", "effect": "yes"},
        {"provider": "sixdot50", "action": "reset", "times": -1},
        {"provider": "sixdot50", "action": "reset", "after": 1.5},
        {"provider": "sixdot50", "action": "reset", "probability": 2},
        {"provider": "sixdot50", "action": "reset", "probability": True},
        {"provider": "sixdot50", "action": "reset", "seed": "x"},
        {"provider": "sixdot50", "action": "reset", "target": 7},
        {"provider": "sixdot50", "action": "reset", "tmes": 2},
    ],
)
def test_parse_fault_refuses_what_it_cannot_honour(body: object) -> None:
    """Bad or misspelt fault descriptions are errors, never silently ignored."""
    with pytest.raises(FaultError):
        parse_fault(body, OPERATIONS)


# --- faults through the app (test client) ------------------------------------------------


@pytest.fixture
def client() -> FlaskClient:
    return create_app().test_client()


def seed(client: Any, count: int = 2) -> str:
    """Seed a DRAFT batch (test client or httpx client); its id."""
    response = client.post(
        "/_sandbox/sixdot50/batches", json={"count": count, "amount_each": "10.00"}
    )
    assert response.status_code == 201
    batch_id: str = (
        response.json()["id"] if isinstance(response, httpx.Response) else response.get_json()["id"]
    )
    return batch_id


def bearer(client: FlaskClient) -> dict[str, str]:
    token = client.post("/sixdot50/authentication/getToken", json=CREDENTIALS).get_json()["token"]
    return {"Authorization": f"Bearer {token}"}


def add_fault(client: FlaskClient, **body: Any) -> dict[str, Any]:
    response = client.post("/_sandbox/faults", json={"provider": "sixdot50", **body})
    assert response.status_code == 201, response.get_json()
    fault: dict[str, Any] = response.get_json()
    return fault


def batch_status(client: FlaskClient, batch_id: str) -> str:
    status: str = client.get(f"/_sandbox/sixdot50/batches/{batch_id}").get_json()["batch"][
        "statusCode"
    ]
    return status


def test_status_fault_answers_the_scripted_error_without_performing(client: FlaskClient) -> None:
    """A 503 with Retry-After is answered; the batch stays DRAFT and no effect is counted."""
    batch_id, headers = seed(client), bearer(client)
    fault = add_fault(
        client, operation="cancel_batch", action="status", status=503, headers={"Retry-After": "2"}
    )

    response = client.post(f"/sixdot50/batches/{batch_id}/cancel", headers=headers)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.get_json() == {"message": "Service Unavailable"}
    assert batch_status(client, batch_id) == "DRAFT"
    call = client.get("/_sandbox/calls?operation=cancel_batch").get_json()["calls"][0]
    assert (call["status"], call["fault"], call["effect"]) == (503, fault["id"], False)


def test_status_fault_with_effect_cancels_but_answers_an_error(client: FlaskClient) -> None:
    """`effect: true`: the cancel happens, the client sees a 500 (the ambiguous case)."""
    batch_id, headers = seed(client), bearer(client)
    add_fault(
        client, operation="cancel_batch", action="status", status=500, effect=True, body={"oops": 1}
    )

    response = client.post(f"/sixdot50/batches/{batch_id}/cancel", headers=headers)

    assert (response.status_code, response.get_json()) == (500, {"oops": 1})
    assert batch_status(client, batch_id) == "CANCELLED"
    effects = client.get("/_sandbox/effects").get_json()["effects"]
    assert effects == {f"sixdot50:cancel_batch:{batch_id}": 1}


@pytest.mark.parametrize("effect", [False, True])
def test_malformed_fault_answers_200_that_is_not_json(client: FlaskClient, effect: bool) -> None:
    """A malformed answer claims JSON but does not parse; the operation ran only with effect."""
    batch_id, headers = seed(client), bearer(client)
    add_fault(client, operation="cancel_batch", action="malformed", effect=effect)

    response = client.post(f"/sixdot50/batches/{batch_id}/cancel", headers=headers)

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.get_data(as_text=True))
    assert batch_status(client, batch_id) == ("CANCELLED" if effect else "DRAFT")


def test_delay_fault_and_latency_setting_slow_answers_down(client: FlaskClient) -> None:
    """Latency applies to every provider call; a delay fault adds to it and still answers."""
    batch_id, headers = seed(client), bearer(client)
    client.post("/_sandbox/settings", json={"latency_ms": 50})
    add_fault(client, operation="get_batch", action="delay", delay_ms=150)

    started = time.monotonic()
    response = client.get(f"/sixdot50/batches/{batch_id}", headers=headers)
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert 0.2 <= elapsed < 2


def test_faults_can_be_listed_and_deleted(client: FlaskClient) -> None:
    """The fault API lists active faults with their counters and deletes one or all."""
    first = add_fault(client, action="reset")
    add_fault(client, action="status", status=429, times=0)

    listed = client.get("/_sandbox/faults").get_json()["faults"]
    deleted = client.delete(f"/_sandbox/faults/{first['id']}")
    missing = client.delete(f"/_sandbox/faults/{first['id']}")
    cleared = client.delete("/_sandbox/faults").get_json()

    assert [(f["id"], f["action"], f["seen"], f["applied"]) for f in listed] == [
        ("f1", "reset", 0, 0),
        ("f2", "status", 0, 0),
    ]
    assert deleted.status_code == 200
    assert missing.status_code == 404
    assert cleared == {"deleted": 1}
    assert client.get("/_sandbox/faults").get_json() == {"faults": []}


@pytest.mark.parametrize(
    "body",
    [{"provider": "nowhere", "action": "reset"}, {"provider": "sixdot50", "action": "melt"}],
)
def test_fault_api_refuses_invalid_faults(client: FlaskClient, body: dict[str, Any]) -> None:
    """An unknown provider or action answers 400 with the reason."""
    response = client.post("/_sandbox/faults", json=body)

    assert response.status_code == 400
    assert response.get_json()["error"]


def test_calls_can_be_filtered_and_cleared(client: FlaskClient) -> None:
    """The call log filters by provider, operation and target; clearing keeps numbering."""
    first, second = seed(client), seed(client)
    headers = bearer(client)
    for batch_id in (first, second, first):
        client.get(f"/sixdot50/batches/{batch_id}", headers=headers)

    by_target = client.get(f"/_sandbox/calls?operation=get_batch&target={first}").get_json()[
        "calls"
    ]
    cleared = client.delete("/_sandbox/calls").get_json()
    client.get(f"/sixdot50/batches/{first}", headers=headers)

    assert [c["seq"] for c in by_target] == [2, 4]
    assert cleared == {"deleted": 4}
    assert [c["seq"] for c in client.get("/_sandbox/calls").get_json()["calls"]] == [5]


# --- faults on the wire: a real threaded server ------------------------------------------


@contextlib.contextmanager
def sandbox_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`python -m sandbox` on a free port (gunicorn): the process and its URL, stopped after."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline().strip()
        assert line.startswith("sandbox listening on http://127.0.0.1:"), line
        yield process, line.rsplit(" ", 1)[1]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


@pytest.fixture(scope="module")
def served_process() -> Iterator[str]:
    with sandbox_process() as (_process, url):
        yield url


@pytest.fixture(params=["in-thread", "process"])
def server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The wire tests run on both servers: werkzeug in a thread, gunicorn in `python -m sandbox`
    (one process for the module, reset before each test)."""
    if request.param == "process":
        url: str = request.getfixturevalue("served_process")
        httpx.post(f"{url}/_sandbox/reset", timeout=5).raise_for_status()
        yield url
        return
    running = start_in_thread(create_app())
    yield running.url
    running.shutdown()


@pytest.fixture
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=5) as client:
        yield client


def wire_bearer(http: httpx.Client) -> dict[str, str]:
    token = http.post("/sixdot50/authentication/getToken", json=CREDENTIALS).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def wait_for_calls(http: httpx.Client, operation: str) -> list[dict[str, Any]]:
    """The logged calls of `operation`, once there is at least one (the request has arrived)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        calls: list[dict[str, Any]] = http.get(f"/_sandbox/calls?operation={operation}").json()[
            "calls"
        ]
        if calls:
            return calls
        time.sleep(0.01)
    raise AssertionError(f"no {operation} call arrived")


@pytest.mark.parametrize("effect", [False, True])
def test_reset_fault_aborts_the_connection_without_an_answer(
    http: httpx.Client, effect: bool
) -> None:
    """The client gets a transport error, no HTTP answer; with effect the cancel still happened."""
    batch_id, headers = seed(http), wire_bearer(http)
    http.post(
        "/_sandbox/faults",
        json={
            "provider": "sixdot50",
            "operation": "cancel_batch",
            "action": "reset",
            "effect": effect,
        },
    )

    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        http.post(f"/sixdot50/batches/{batch_id}/cancel", headers=headers)

    after = http.get(f"/sixdot50/batches/{batch_id}", headers=headers).json()
    assert after["statusCode"] == ("CANCELLED" if effect else "DRAFT")
    effects = http.get("/_sandbox/effects").json()["effects"]
    assert effects == ({f"sixdot50:cancel_batch:{batch_id}": 1} if effect else {})
    call = http.get("/_sandbox/calls?operation=cancel_batch").json()["calls"][0]
    assert (call["status"], call["effect"]) == ("reset", effect)


def test_timeout_fault_holds_the_request_without_blocking_others(http: httpx.Client) -> None:
    """The faulted call hits the client's read timeout while other calls are answered."""
    batch_id, headers = seed(http), wire_bearer(http)
    http.post(
        "/_sandbox/faults",
        json={
            "provider": "sixdot50",
            "operation": "cancel_batch",
            "action": "timeout",
            "delay_ms": 3000,
            "effect": True,
        },
    )
    outcome: list[BaseException] = []

    def cancel() -> None:
        try:
            http.post(f"/sixdot50/batches/{batch_id}/cancel", headers=headers, timeout=0.5)
        except httpx.TransportError as error:
            outcome.append(error)

    held = threading.Thread(target=cancel)
    held.start()
    calls = wait_for_calls(http, "cancel_batch")
    during = http.get(f"/sixdot50/batches/{batch_id}", headers=headers)
    held.join()

    assert during.status_code == 200
    assert during.json()["statusCode"] == "CANCELLED"
    assert len(outcome) == 1
    assert isinstance(outcome[0], httpx.ReadTimeout)
    assert [(c["status"], c["effect"]) for c in calls] == [("timeout", True)]


def test_timeout_fault_closes_the_connection_after_holding_it(http: httpx.Client) -> None:
    """A patient client sees the connection closed without an answer once the hold ends."""
    batch_id, headers = seed(http), wire_bearer(http)
    http.post(
        "/_sandbox/faults",
        json={
            "provider": "sixdot50",
            "operation": "get_batch",
            "action": "timeout",
            "delay_ms": 200,
        },
    )

    with pytest.raises(httpx.RemoteProtocolError):
        http.get(f"/sixdot50/batches/{batch_id}", headers=headers)


def test_python_m_sandbox_serves_and_stops_on_sigterm() -> None:
    """`python -m sandbox` logs its URL, serves, and exits 0 on SIGTERM."""
    with sandbox_process() as (process, url):
        settings = httpx.get(f"{url}/_sandbox/settings", timeout=5)
        assert settings.status_code == 200

        process.send_signal(signal.SIGTERM)

        assert process.wait(timeout=10) == 0


def _read_response(conn: socket.socket, buffered: bytes) -> tuple[bytes, bytes]:
    """One HTTP/1.1 response with a Content-Length from the socket: (head, what follows)."""
    data = buffered
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(rest) < length:
        chunk = conn.recv(65536)
        assert chunk, "the server closed the connection mid-body"
        rest += chunk
    return head, rest[length:]


def test_python_m_sandbox_keeps_connections_alive(served_process: str) -> None:
    """Three requests on one TCP connection are all answered, none with `Connection: close`
    (real providers keep connections open; a connect per call would skew the benchmarks)."""
    host, port = served_process.removeprefix("http://").split(":")
    request = f"GET /_sandbox/settings HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        buffered = b""
        heads = []
        for _ in range(3):
            conn.sendall(request)
            head, buffered = _read_response(conn, buffered)
            heads.append(head.lower())

    assert all(head.startswith(b"http/1.1 200") for head in heads)
    assert not any(b"connection: close" in head for head in heads)
