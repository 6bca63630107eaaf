"""POST /callbacks/paywall over Flask's test client and a real SQLite ledger."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder, run_wsgi_app

from webhooks import create_app
from worker.ledger.uow import SqlUnitOfWork
from worker.providers.paywall.callbacks import expected_hash
from worker.settings import Settings

KEY = "cb-key"


class Recorder:
    def __init__(self) -> None:
        self.pages: list[tuple[str, str]] = []

    def page_arrived(self, bulk_payment_id: str, code: str) -> None:
        self.pages.append((bulk_payment_id, code))


def make_client(tmp_path: Path, keys: str | None = KEY) -> tuple[FlaskClient, Recorder]:
    recorder = Recorder()
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}",
                        paywall_hash_keys=keys)  # type: ignore[arg-type]
    return create_app(settings, dispatcher=recorder).test_client(), recorder


def body(key: str = KEY, **overrides: Any) -> dict[str, Any]:
    page = {"BulkPaymentId": 5, "MerchantUniqueCode": "bulk-9", "PageNumber": 1,
            "TotalPages": 1, "Hash": expected_hash(key.encode(), "5", "bulk-9"),
            "Payments": [{"MerchantUniqueCode": "p1", "PaymentId": 1, "Amount": 12.5,
                          "Status": 4, "Scope": "cancel"}]}
    page.update(overrides)
    return page


def stored_pages(client: FlaskClient) -> int:
    engine = client.application.extensions["cancelflow"]["engine"]
    with SqlUnitOfWork(engine, read_only=True) as uow:
        return uow.callback_pages.count()


def test_a_verified_page_is_stored_then_acknowledged(tmp_path: Path) -> None:
    """A page with a good hash answers 200 {received: true}, is stored, and is enqueued."""
    client, recorder = make_client(tmp_path)
    answer = client.post("/callbacks/paywall", json=body())
    assert (answer.status_code, answer.get_json()) == (200, {"received": True})
    assert stored_pages(client) == 1
    assert recorder.pages == [("5", "bulk-9")]


def test_a_duplicate_is_acknowledged_and_changes_nothing(tmp_path: Path) -> None:
    """The same page twice: 200 both times, one row; a replay with other payments is ignored."""
    client, _ = make_client(tmp_path)
    client.post("/callbacks/paywall", json=body())
    replay = body(Payments=[{"MerchantUniqueCode": "evil", "PaymentId": 2, "Amount": 999.0,
                             "Status": 4, "Scope": "cancel"}])
    assert client.post("/callbacks/paywall", json=replay).status_code == 200
    assert stored_pages(client) == 1


def test_a_forged_hash_is_refused_and_stores_nothing(tmp_path: Path) -> None:
    """A page signed with an unknown key answers 401 and leaves no trace in the ledger."""
    client, recorder = make_client(tmp_path)
    answer = client.post("/callbacks/paywall", json=body(key="attacker"))
    assert answer.status_code == 401
    assert stored_pages(client) == 0 and recorder.pages == []


def test_any_configured_key_is_accepted(tmp_path: Path) -> None:
    """With two keys configured (a rotation), either verifies."""
    client, _ = make_client(tmp_path, keys="new-key, cb-key")
    assert client.post("/callbacks/paywall", json=body()).status_code == 200


def test_not_configured_answers_503(tmp_path: Path) -> None:
    """Without hash keys the receiver cannot verify anything: 503."""
    client, _ = make_client(tmp_path, keys=None)
    assert client.post("/callbacks/paywall", json=body()).status_code == 503


def test_over_16_mib_answers_413(tmp_path: Path) -> None:
    """A body above 16 MiB is refused before it is read."""
    client, _ = make_client(tmp_path)
    answer = client.post("/callbacks/paywall", data=b"x" * (16 * 1024 * 1024 + 1),
                         content_type="application/json")
    assert answer.status_code == 413


@pytest.mark.parametrize(("size", "status"), [(16 * 1024 * 1024, 400),
                                               (16 * 1024 * 1024 + 1, 413),
                                               (40 * 1024 * 1024, 413)])
def test_a_chunked_body_is_bounded_too(tmp_path: Path, size: int, status: int) -> None:
    """A chunked body is read to one byte past 16 MiB at most: over is 413, at is read."""
    client, _ = make_client(tmp_path)
    environ = EnvironBuilder(path="/callbacks/paywall", method="POST",
                             headers={"Transfer-Encoding": "chunked"}).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    stream = io.BytesIO(b"x" * size)
    environ.update({"wsgi.input": stream, "wsgi.input_terminated": True})
    _body, answered, _headers = run_wsgi_app(client.application, environ, buffered=True)
    assert int(answered.split()[0]) == status
    assert stream.tell() <= 16 * 1024 * 1024 + 1


def test_the_hash_is_checked_before_the_payments_are_read(tmp_path: Path) -> None:
    """Unreadable payments under a wrong Hash answer 401; under the right one, 400."""
    client, _ = make_client(tmp_path)
    garbled = [{"Amount": "ten", "Status": 4}]
    forged = client.post("/callbacks/paywall", json=body(key="attacker", Payments=garbled))
    signed = client.post("/callbacks/paywall", json=body(Payments=garbled))
    assert (forged.status_code, signed.status_code) == (401, 400)
    assert stored_pages(client) == 0


def test_a_forged_16_mib_page_is_refused_401_and_stores_nothing(tmp_path: Path) -> None:
    """A 16 MiB page of payments with a wrong Hash: 401, nothing stored, nothing enqueued."""
    client, recorder = make_client(tmp_path)
    payment = ',{"MerchantUniqueCode":"p","PaymentId":1,"Amount":1.5,"Status":4}'
    head = json.dumps(body(key="attacker", Payments=[]))[:-2]
    raw = (head + payment[1:] + payment * ((16 * 1024 * 1024 - len(head)) // len(payment) - 1)
           + "]}").encode()
    assert len(raw) <= 16 * 1024 * 1024
    answer = client.post("/callbacks/paywall", data=raw, content_type="application/json")
    assert answer.status_code == 401
    assert stored_pages(client) == 0 and recorder.pages == []


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'{"BulkPaymentId": 5}',
                                 b"\xff\xfe", json.dumps(body(PageNumber=2)).encode()])
def test_malformed_bodies_answer_400(tmp_path: Path, raw: bytes) -> None:
    """Bodies that are not callback pages are 400, with nothing stored."""
    client, _ = make_client(tmp_path)
    assert client.post("/callbacks/paywall", data=raw,
                       content_type="application/json").status_code == 400
    assert stored_pages(client) == 0


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage=st.one_of(
    st.binary(max_size=200).map(lambda b: ("raw", b)),
    JSON.map(lambda v: ("json", v)),
    st.dictionaries(st.sampled_from(list(body())), JSON).map(lambda d: ("json", {**body(), **d})),
))
def test_garbage_never_gets_a_5xx(tmp_path_factory: pytest.TempPathFactory,
                                  garbage: tuple[str, Any]) -> None:
    """Whatever the body, the receiver answers 200, 400 or 401, never a server error."""
    client = _shared_client(tmp_path_factory)
    kind, value = garbage
    data = value if kind == "raw" else json.dumps(value).encode()
    answer = client.post("/callbacks/paywall", data=data, content_type="application/json")
    assert answer.status_code in (200, 400, 401)


_clients: dict[str, FlaskClient] = {}


def _shared_client(factory: pytest.TempPathFactory) -> FlaskClient:
    if "c" not in _clients:
        _clients["c"], _ = make_client(factory.mktemp("fuzz"))
    return _clients["c"]
