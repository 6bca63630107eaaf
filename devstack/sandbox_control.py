"""A thin client of the sandbox's control API, for the demo, the tests and the benchmarks."""

from __future__ import annotations

import weakref
from typing import Any

import httpx


class SandboxControl:
    def __init__(self, base_url: str) -> None:
        self._http = httpx.Client(base_url=f"{base_url.rstrip('/')}/_sandbox", timeout=10)
        # The sandbox keeps connections alive: a control forgotten unclosed still closes them
        # when it is collected, instead of leaving sockets to a ResourceWarning.
        weakref.finalize(self, self._http.close)

    def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.post(path, json=body or {})
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self._post("/reset")

    def seed_batch(self, **batch: Any) -> dict[str, Any]:
        """A 6DOT50 batch: ``count``/``amount_each``/``statusCode``/``settled``, or ``payments``."""
        result: dict[str, Any] = self._post("/sixdot50/batches", batch)
        return result

    def seed_payment(self, **payment: Any) -> dict[str, Any]:
        """A Bambora payment: ``merchant``, ``reference``, ``state``, ``amount``, ``currency``."""
        result: dict[str, Any] = self._post("/bambora/payments", payment)
        return result

    def seed_payments(self, **bulk: Any) -> dict[str, Any]:
        """Many Bambora payments: ``merchant``, ``count``, ``prefix`` (references prefix1..)."""
        result: dict[str, Any] = self._post("/bambora/payments/bulk", bulk)
        return result

    def seed_bulk(self, **bulk: Any) -> dict[str, Any]:
        """A Paywall bulk: ``code``, ``date``, ``count``, ``amount_each``, ``callback_url``..."""
        result: dict[str, Any] = self._post("/paywall/bulks", bulk)
        return result

    def add_fault(self, **fault: Any) -> str:
        return str(self._post("/faults", fault)["id"])

    def clear_faults(self) -> None:
        self._http.delete("/faults").raise_for_status()

    def settings(self, **values: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._post("/settings", values)
        return result

    def calls(self, **filters: str) -> list[dict[str, Any]]:
        response = self._http.get("/calls", params=filters)
        response.raise_for_status()
        calls: list[dict[str, Any]] = response.json()["calls"]
        return calls

    def effects(self, provider: str | None = None) -> dict[str, int]:
        params = {"provider": provider} if provider else {}
        response = self._http.get("/effects", params=params)
        response.raise_for_status()
        effects: dict[str, int] = response.json()["effects"]
        return effects

    def close(self) -> None:
        """Close the kept-alive connections (the sandbox keeps connections open)."""
        self._http.close()

    def __enter__(self) -> SandboxControl:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
