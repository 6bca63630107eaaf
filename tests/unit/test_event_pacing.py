"""Task events flushed at most once per EVENT_FLUSH_SECONDS (tasks/event_pacing.py), on a fake
event loop: the events buffered meanwhile share the flush, and a stop or shutdown flushes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from celery.worker.consumer.consumer import Consumer

from tasks.event_pacing import EVENT_FLUSH_SECONDS, PacedEvents
from tasks.intake import IntakeConsumer


class FakeHub:
    """Celery's hub, as far as the pacing uses it: a ready list and timers, run by hand."""

    def __init__(self) -> None:
        self.ready: list[Callable[[], Any]] = []
        self.timers: list[tuple[float, Callable[[], Any]]] = []

    def call_soon(self, callback: Callable[[], Any]) -> None:
        self.ready.append(callback)

    def call_later(self, delay: float, callback: Callable[[], Any]) -> None:
        self.timers.append((delay, callback))

    def run_ready(self) -> None:
        ready, self.ready = self.ready, []
        for callback in ready:
            callback()

    def fire_timers(self) -> None:
        timers, self.timers = self.timers, []
        for _, callback in timers:
            callback()


class FakeConsumer:
    """The part of Celery's consumer the mixin overrides, recording what it is asked."""

    def __init__(self, hub: FakeHub | None) -> None:
        self.hub = hub
        self.calls: list[str] = []

    def _flush_events(self) -> None:
        self.calls.append("flush")

    def stop(self) -> None:
        self.calls.append("stop")

    def shutdown(self) -> None:
        self.calls.append("shutdown")


class Paced(PacedEvents, FakeConsumer):
    pass


def test_events_buffered_together_share_one_flush() -> None:
    hub = FakeHub()
    consumer = Paced(hub)
    for _ in range(30):
        consumer.on_send_event_buffered()
    assert consumer.calls == []
    assert len(hub.ready) == 1
    hub.run_ready()
    assert [delay for delay, _ in hub.timers] == [EVENT_FLUSH_SECONDS]
    consumer.on_send_event_buffered()
    assert hub.ready == []
    hub.fire_timers()
    assert consumer.calls == ["flush"]


def test_an_event_after_a_flush_schedules_the_next_one() -> None:
    hub = FakeHub()
    consumer = Paced(hub)
    consumer.on_send_event_buffered()
    hub.run_ready()
    hub.fire_timers()
    consumer.on_send_event_buffered()
    hub.run_ready()
    hub.fire_timers()
    assert consumer.calls == ["flush", "flush"]


@pytest.mark.parametrize("how", ["stop", "shutdown"])
def test_stopping_flushes_what_is_buffered_first(how: str) -> None:
    hub = FakeHub()
    consumer = Paced(hub)
    consumer.on_send_event_buffered()
    getattr(consumer, how)()
    assert consumer.calls == ["flush", how]


def test_without_an_event_loop_nothing_is_scheduled() -> None:
    consumer = Paced(None)
    consumer.on_send_event_buffered()
    assert consumer.calls == []


def test_the_worker_consumer_is_paced() -> None:
    assert issubclass(IntakeConsumer, PacedEvents)
    assert IntakeConsumer.on_send_event_buffered is PacedEvents.on_send_event_buffered
    # The mixin only declares the flush; Celery's own does the work.
    assert IntakeConsumer._flush_events is Consumer._flush_events
