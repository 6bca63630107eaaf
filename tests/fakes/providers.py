"""Fake provider HTTP answers shared by the adapter, document, query and callback tests: each
adapter over an ``httpx.MockTransport``, the token answers, Paywall's envelope and a callback page.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import SecretStr

from worker.providers.bambora.adapter import Bambora
from worker.providers.calls import CallRecord
from worker.providers.paywall.adapter import Paywall
from worker.providers.paywall.callbacks import expected_hash
from worker.providers.sixdot50.adapter import SixDot50

Handler = Callable[[httpx.Request], httpx.Response]

SIXDOT50_BASE = "https://pay.example/api"
# The key Paywall hashes its callback pages with, in these tests.
CALLBACK_KEY = b"hash-key"


def sixdot50_api(handler: Handler, records: list[CallRecord] | None = None) -> SixDot50:
    """6DOT50's adapter answered by ``handler`` (key ``k``, secret ``s``)."""
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return SixDot50(client, SIXDOT50_BASE, SecretStr("k"), SecretStr("s"),
                    on_call=records.append if records is not None else None)


def sixdot50_token(request: httpx.Request, token: str = "tok-1") -> httpx.Response:  # noqa: S107
    """getToken's answer, after checking the key and secret were sent."""
    assert json.loads(request.content) == {"key": "k", "secret": "s"}
    return httpx.Response(200, json={"success": True, "token": token,
                                     "expiresAt": "2099-01-01T00:00:00Z"})


def bambora_api(handler: Handler) -> Bambora:
    """Bambora's adapter answered by ``handler`` (client ``cid``, secret ``csecret``)."""
    return Bambora(httpx.Client(transport=httpx.MockTransport(handler)),
                   base_url="https://api.example", auth_url="https://auth.example",
                   client_id=SecretStr("cid"), client_secret=SecretStr("csecret"))


def bambora_token(request: httpx.Request, value: str = "jwt-1") -> httpx.Response:
    """The token service's answer, after checking the client credentials were sent."""
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(
        b"cid:csecret").decode()
    assert b"grant_type=client_credentials" in request.content
    return httpx.Response(200, json={"access_token": value, "token_type": "Bearer",
                                     "expires_in": 3600})


def paywall_envelope(body: Any = None, code: int = 0, result: bool = True) -> dict[str, Any]:
    """Paywall's answer envelope around ``body``; ``code`` non-zero for a refusal."""
    return {"ErrorCodeType": 1, "ErrorMessage": None if code == 0 else "refused",
            "ErrorCode": code, "Result": result, "Message": None, "Body": body}


def paywall_api(handler: Handler, **options: Any) -> Paywall:
    """Paywall's adapter (public and private API) answered by ``handler``."""
    return Paywall(
        httpx.Client(transport=httpx.MockTransport(handler)),
        public_url="https://pw.example/public",
        private_url="https://pw.example/private",
        public_headers=(SecretStr("pk"), SecretStr("pc")),
        private_headers=(SecretStr("sk"), SecretStr("sc")),
        **options,
    )


def paywall_callback_page(**overrides: Any) -> dict[str, Any]:
    """Page 1 of 2 of bulk 81234's cancel, hashed with ``CALLBACK_KEY``: one paid, one failed."""
    body: dict[str, Any] = {
        "Type": "BulkCancel", "BulkPaymentId": 81234, "MerchantUniqueCode": "bulk-1",
        "Hash": expected_hash(CALLBACK_KEY, "81234", "bulk-1"), "IsCompressed": False,
        "PageNumber": 1, "TotalPages": 2, "HasMorePages": True,
        "Payments": [
            {"MerchantUniqueCode": "p1", "PaymentId": 1, "Amount": 10.25, "Status": 4,
             "Scope": "cancel", "ErrorCode": 0, "ErrorMessage": None},
            {"MerchantUniqueCode": "p2", "PaymentId": 2, "Amount": 5, "Status": 5,
             "Scope": "cancel", "ErrorCode": 1, "ErrorMessage": "x"},
        ],
    }
    body.update(overrides)
    return body
