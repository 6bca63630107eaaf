"""One Redis client per broker channel, instead of one built for every publish and every ack.

kombu 5.7.0's Redis channel builds a new ``redis.Redis`` object each time it needs one without a
client in hand (``Channel.conn_or_acquire`` -> ``_create_client``): every task message and every
task event published, every late acknowledgement and every QoS bookkeeping pipeline. The object
shares the channel's connection pool, so no socket is opened, but redis-py 8 sets up its command
callbacks, retry policy and event dispatcher on each construction. Measured with py-spy on a
worker running one-payment jobs at 100 ms provider latency: ``Redis.__init__`` took 12.7% of the
worker's GIL time, most of it on the consumer's event loop, which is the process's first
bottleneck (BENCHMARKS.md, issue 15).

A ``redis.Redis`` built on a connection pool (not a single-connection client) holds no state
between commands: each command checks a connection out of the pool and gives it back, and each
``pipeline()`` is a new object. So one such client per channel is safe from every thread of the
pool. It is tied to the pool it was built on: when the channel drops its pool (a lost connection,
a close), the next use builds a new client on the new pool. The asynchronous client kombu uses for
BRPOP is already built once per channel (``Channel.client``) and is left alone.

No kombu release changes this (kombu 5.7.0 is the newest at the time of writing).
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis

_create_client: Any = kombu_redis.Channel._create_client
_CACHE = "_cancelflow_sync_client"


def _reused_client(self: Any, asynchronous: bool = False) -> Any:
    if asynchronous:
        return _create_client(self, asynchronous=True)
    pool = self.pool
    cached = getattr(self, _CACHE, None)
    if cached is not None and cached[0] is pool:
        return cached[1]
    client = _create_client(self, asynchronous=False)
    setattr(self, _CACHE, (pool, client))
    return client


def install() -> None:
    """Reuse each Redis channel's client (idempotent; called when a worker process starts)."""
    kombu_redis.Channel._create_client = _reused_client  # type: ignore[method-assign]


def installed() -> bool:
    return kombu_redis.Channel._create_client is _reused_client
