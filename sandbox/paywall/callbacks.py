"""The background sender of Paywall callbacks: one per sandbox app, a daemon thread.

Pages wait in a queue ordered by when they are due; the thread POSTs them one at a time
(JSON, httpx, 10 s timeout), logs every attempt and retries a page that got no 2xx. The
thread starts with the first page queued and ends when the queue is empty or the server is
stopping, so it never keeps a process alive or idles between tests. Lock order: the state
lock may be held while queueing (the sender's own lock is taken inside it); the thread never
holds its own lock while it takes the state lock or sends.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from dataclasses import dataclass

import httpx
from flask import current_app

from sandbox.paywall.model import NAME, Plan
from sandbox.state import SandboxState, current_state

TIMEOUT_SECONDS = 10
POLL_SECONDS = 0.05  # how soon a waiting thread notices that the server is stopping
NO_CALLBACK_URL = "NoCallbackUrl"
_EXTENSION = "sandbox.paywall.callbacks"


@dataclass(frozen=True)
class Delivery:
    """One attempt at sending one page of a plan."""

    plan: Plan
    page: int
    attempt: int = 1


class CallbackSender:
    """Sends queued callback pages from a thread of its own."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state
        self._ready = threading.Condition()
        self._queue: list[tuple[float, int, Delivery]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._in_flight = 0

    def pending(self) -> int:
        """Page deliveries queued (retries included) or being sent; held ones do not count."""
        with self._ready:
            return len(self._queue) + self._in_flight

    def submit(self, plan: Plan, delay_ms: int | None = None) -> None:
        """Queue every page of `plan`, in its order, after `delay_ms` (default: the plan's)."""
        due = time.monotonic() + (plan.delay_ms if delay_ms is None else delay_ms) / 1000
        with self._ready:
            for page in plan.pages:
                heapq.heappush(self._queue, (due, next(self._order), Delivery(plan, page)))
            self._start()
            self._ready.notify()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="sandbox-paywall-callbacks", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=TIMEOUT_SECONDS) as client:
            while (delivery := self._next()) is not None:
                self._deliver(client, delivery)

    def _next(self) -> Delivery | None:
        """The next due delivery; None (and the thread ends) when idle or stopping."""
        with self._ready:
            self._in_flight = 0
            while self._queue and not self._state.stopping.is_set():
                wait = self._queue[0][0] - time.monotonic()
                if wait <= 0:
                    self._in_flight = 1
                    return heapq.heappop(self._queue)[2]
                self._ready.wait(min(wait, POLL_SECONDS))
            self._thread = None
            return None

    def _deliver(self, client: httpx.Client, delivery: Delivery) -> None:
        plan, state = delivery.plan, self._state
        with state.lock:
            if state.stores.get(NAME) is not plan.store:
                return  # the sandbox was reset since: forget the old store's callbacks
            body = plan.page_body(delivery.page, state.clock())
        status: int | str
        if plan.url is None:
            status, ok = NO_CALLBACK_URL, True  # nowhere to send: nothing to retry
        else:
            try:
                response = client.post(plan.url, json=body)
                status, ok = response.status_code, response.is_success
            except Exception as error:  # any failure to deliver is logged and retried
                status, ok = type(error).__name__, False
        with state.lock:
            plan.store.log_delivery(plan.op, delivery.page, delivery.attempt, status)
        if not ok and delivery.attempt <= plan.retries:
            retry = Delivery(plan, delivery.page, delivery.attempt + 1)
            with self._ready:
                due = time.monotonic() + plan.backoff_ms / 1000
                heapq.heappush(self._queue, (due, next(self._order), retry))


def pending() -> int:
    """How many page deliveries the current app's sender still has to make."""
    found = current_app.extensions.get(_EXTENSION)
    return found.pending() if isinstance(found, CallbackSender) else 0


def sender() -> CallbackSender:
    """The current app's sender (created on first use; call with the state lock held)."""
    found = current_app.extensions.get(_EXTENSION)
    if not isinstance(found, CallbackSender):
        found = current_app.extensions[_EXTENSION] = CallbackSender(current_state())
    return found
