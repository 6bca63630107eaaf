"""The API token and the dashboard sign-in: an empty token opens nothing, the cookie follows
PUBLIC_URL's scheme, and wrong guesses are throttled per client address."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.fakes import FakeDispatcher
from webhooks import create_app
from worker.settings import Settings, load_settings

TOKEN = "auth-test-token-0123456789abcdef-xyz"


def make_app(tmp_path: Path, **values: object) -> Flask:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}", **values)  # type: ignore[arg-type]
    return create_app(settings, dispatcher=FakeDispatcher())


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_token_from_the_environment_opens_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """CANCELFLOW_API_TOKEN="" is unset: an empty bearer gets 503, the sign-in is closed, and
    no session key is derived from nothing."""
    monkeypatch.setenv("CANCELFLOW_API_TOKEN", value)
    monkeypatch.setenv("CANCELFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'ledger.db'}")
    load_settings.cache_clear()
    try:
        app = create_app(dispatcher=FakeDispatcher())
    finally:
        load_settings.cache_clear()
    client = app.test_client()
    for headers in ({"Authorization": "Bearer "}, {"Authorization": f"Bearer {value}"}, {}):
        assert client.get("/api/v1/jobs", headers=headers).status_code == 503
        assert client.get("/", headers=headers).status_code == 503
    assert client.get("/login").status_code == 503
    assert client.post("/login", data={"token": value}).status_code == 503
    assert app.secret_key is None


@pytest.mark.parametrize(("public_url", "secure"), [
    ("https://cancelflow.example.com", True), ("http://10.0.0.5:8000", False), (None, False)])
def test_the_session_cookie_is_secure_behind_https(
    tmp_path: Path, public_url: str | None, secure: bool
) -> None:
    """With an https PUBLIC_URL the session cookie carries Secure; otherwise it cannot."""
    client = make_app(tmp_path, api_token=TOKEN, public_url=public_url).test_client()
    answer = client.post("/login", data={"token": TOKEN, "next": "/"})
    assert answer.status_code == 303
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("cancelflow_session=") and "HttpOnly" in cookie
    assert ("; Secure" in cookie) is secure


def _login(client: FlaskClient, token: str, address: str, **headers: str) -> TestResponse:
    return client.post("/login", data={"token": token},
                       environ_base={"REMOTE_ADDR": address}, headers=headers)


def test_wrong_tokens_are_throttled_per_address(tmp_path: Path) -> None:
    """After five wrong tokens an address gets 429 with Retry-After, even with the right
    token; another address still signs in."""
    client = make_app(tmp_path, api_token=TOKEN).test_client()
    for _ in range(5):
        assert _login(client, "wrong", "203.0.113.7").status_code == 401
    held = _login(client, TOKEN, "203.0.113.7")
    assert held.status_code == 429
    assert 0 < int(held.headers["Retry-After"]) <= 300
    assert "Too many wrong tokens" in held.get_data(as_text=True)
    assert _login(client, TOKEN, "203.0.113.8").status_code == 303


@pytest.mark.parametrize(("proxies", "held"), [(0, True), (1, False)])
def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(
    tmp_path: Path, proxies: int, held: bool
) -> None:
    """With CANCELFLOW_TRUSTED_PROXIES=1 each X-Forwarded-For client has its own count; with
    0 the header is ignored and every request counts against the proxy's address."""
    client = make_app(tmp_path, api_token=TOKEN, trusted_proxies=proxies).test_client()
    for n in range(5):
        _login(client, "wrong", "10.0.0.1", **{"X-Forwarded-For": f"198.51.100.{n}"})
    answer = _login(client, TOKEN, "10.0.0.1", **{"X-Forwarded-For": "198.51.100.99"})
    assert (answer.status_code == 429) is held
