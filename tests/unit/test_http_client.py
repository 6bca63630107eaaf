"""The process's provider client: explicit timeouts, and no cookies kept or sent."""

from __future__ import annotations

import httpx
import pytest

from worker.bootstrap import http_client
from worker.settings import Settings


def test_a_cookie_a_provider_sets_is_neither_kept_nor_sent_back() -> None:
    seen: list[httpx.Request] = []

    def provider(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"Set-Cookie": "session=abc; Path=/"}, json={})

    client = http_client(Settings(http_timeout_seconds=3.5), httpx.MockTransport(provider))
    client.get("https://provider.example/a")
    client.get("https://provider.example/b")

    assert "cookie" not in seen[1].headers
    assert dict(client.cookies) == {}
    assert client.timeout.read == 3.5
    with pytest.raises(TypeError, match="no cookies"):
        client.cookies = {"session": "abc"}
