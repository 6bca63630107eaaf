"""Task events sent at most once per ``EVENT_FLUSH_SECONDS``, in one message, instead of one
message per turn of the consumer's loop.

Celery's worker already buffers task events (task-received, -started, -succeeded, ...) and
publishes what is buffered as one ``task.multi`` message; but it asks its event loop to flush as
soon as an event is buffered, so under load nearly every event still costs its own publish: a
message built, serialized and sent to Redis from the consumer's thread, which is the worker
process's first bottleneck at real provider latency (BENCHMARKS.md, issue 15: 16% of the GIL's
time went to these flushes). Here the first buffered event schedules one flush
``EVENT_FLUSH_SECONDS`` later and the events buffered meanwhile ride along; Celery's own limit
(24 events buffered) still flushes at once.

The price: Flower and other event readers see a task's events up to 50 ms late. Events are
monitoring, not state (the ledger holds the jobs), and what is buffered is flushed when the
consumer stops or shuts down, so a graceful stop loses none; a killed worker loses at most 50 ms
of events, as it loses whatever it had not sent before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

EVENT_FLUSH_SECONDS = 0.05


class PacedEvents:
    """A mixin for Celery's worker consumer; see the module's docstring."""

    hub: Any
    _flush_events: Callable[[], None]  # Celery's Consumer: flush what the dispatcher buffered
    _flush_pending = False

    def on_send_event_buffered(self) -> None:
        # Called from the pool's threads too: the hub's ready set is the thread-safe way onto the
        # loop, and its timer is only touched from the loop's own thread. Two threads racing past
        # the flag schedule one flush too many, which is harmless.
        if self.hub is None:
            return
        if not self._flush_pending:
            self._flush_pending = True
            self.hub.call_soon(self._schedule_flush)

    def _schedule_flush(self) -> None:
        self.hub.call_later(EVENT_FLUSH_SECONDS, self._paced_flush)

    def _paced_flush(self) -> None:
        self._flush_pending = False
        self._flush_events()

    def stop(self) -> None:
        self._flush_events()
        super().stop()  # type: ignore[misc]

    def shutdown(self) -> None:
        self._flush_events()
        super().shutdown()  # type: ignore[misc]
