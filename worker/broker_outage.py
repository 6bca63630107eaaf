"""A worker that outlives a Redis outage: a guard for kombu 5.7.0 under Celery 5.7.0.

When the broker goes away under a consuming worker, Celery 5.7.0's consumer first *collects* the
lost connection (kombu closes its channels and detaches its transport from the connection), then
*closes* it. A Redis channel that was waiting in BRPOP fails its first close (the read on the dead
socket raises), so the second close runs it again; by then the transport has no connection, and
restoring the channel's unacknowledged messages asks it for the broker's address:
``AttributeError: 'NoneType' object has no attribute 'hostname'`` from
``kombu.transport.redis.QoS.restore_unacked``. That is not a connection error, nothing catches
it, and the worker stops with "Unrecoverable error" (exit 1) instead of reconnecting. Past that,
a task that was running during the outage acknowledges its message after the reconnection,
through the old (now closed) channel: ``'NoneType' object has no attribute 'client'``, and the
worker stops again.

No Celery or kombu release fixes it (checked against both projects' main branches, August 2026:
Celery's ``on_connection_error_after_connected`` still collects, then closes). The guard makes a
Redis channel whose connection is gone raise what it is, a connection error, where it would need
the broker's address: Celery and kombu already handle connection errors there (the close goes
on, a late acknowledgement is logged as "Couldn't ack"). The messages concerned stay in Redis's
``unacked`` hash, where they have been since delivery, and kombu hands them out again after the
visibility timeout; every task is idempotent (the ledger's compare-and-set), so that is harmless.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis

_connparams: Any = kombu_redis.Channel._connparams


def _connparams_of_a_live_channel(self: Any, asynchronous: bool = False) -> Any:
    transport = self.connection
    if transport is None or transport.client is None:
        raise redis.exceptions.ConnectionError(
            "this channel's broker connection was closed (a message of the lost connection "
            "comes back after the visibility timeout)")
    return _connparams(self, asynchronous=asynchronous)


def install() -> None:
    """Guard kombu's Redis channels (idempotent; called when a worker process starts)."""
    kombu_redis.Channel._connparams = _connparams_of_a_live_channel  # type: ignore[method-assign]
