"""One Redis client per broker channel (worker/broker_client_reuse.py), against a real Redis:
reused across commands and threads, rebuilt on a new pool, and messages still go through."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection
from kombu.transport import redis as kombu_redis

from worker import broker_client_reuse
from worker.celery_app import _reuse_broker_clients

pytestmark = pytest.mark.integration

THREADS, INCREMENTS = 8, 200


@pytest.fixture
def reuse(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reuse installed for one test, kombu's own method restored afterwards."""
    monkeypatch.setattr(kombu_redis.Channel, "_create_client", kombu_redis.Channel._create_client)
    broker_client_reuse.install()


@pytest.fixture
def channel(redis_url: str, reuse: None) -> Iterator[kombu_redis.Channel]:
    with Connection(redis_url) as conn:
        yield conn.default_channel


def test_the_worker_handler_installs_the_reuse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kombu_redis.Channel, "_create_client", kombu_redis.Channel._create_client)
    assert not broker_client_reuse.installed()
    _reuse_broker_clients()
    assert broker_client_reuse.installed()


def test_one_client_serves_every_command_of_a_channel(channel: kombu_redis.Channel) -> None:
    first = channel._create_client()
    with channel.conn_or_acquire() as second:
        assert second is first
    assert first.connection_pool is channel.pool
    assert first.ping()


def test_the_asynchronous_client_is_left_to_kombu(channel: kombu_redis.Channel) -> None:
    a, b = channel._create_client(asynchronous=True), channel._create_client(asynchronous=True)
    assert a is not b
    assert a.connection_pool is channel.async_pool
    assert a is not channel._create_client()


def test_a_new_pool_gets_a_new_client(channel: kombu_redis.Channel) -> None:
    old = channel._create_client()
    channel._disconnect_pools()
    new = channel._create_client()
    assert new is not old
    assert new.connection_pool is channel.pool
    assert new.ping()


def test_threads_share_the_client_without_losing_a_command(
    channel: kombu_redis.Channel,
) -> None:
    """8 threads each run 200 pipelined increments through the channel's client at once: every
    increment lands, and the channel built one client for all of them."""
    key = f"reuse-test:{uuid.uuid4()}"
    clients: set[int] = set()
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def work() -> None:
        try:
            start.wait(timeout=10)
            for _ in range(INCREMENTS):
                with channel.conn_or_acquire() as client:
                    clients.add(id(client))
                    with client.pipeline() as pipe:
                        pipe.incr(key).expire(key, 60).execute()
        except BaseException as exc:  # handed to the main thread's assertion
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert not any(thread.is_alive() for thread in threads)
    assert len(clients) == 1
    assert int(channel._create_client().get(key)) == THREADS * INCREMENTS


def test_messages_go_through_a_reused_client(channel: kombu_redis.Channel, redis_url: str) -> None:
    """Published, consumed and acknowledged with the reuse in place: the queue ends empty and
    nothing is left unacknowledged."""
    name = f"reuse-test-{uuid.uuid4()}"
    with Connection(redis_url) as conn:
        queue = conn.SimpleQueue(name)
        try:
            for n in range(20):
                queue.put({"n": n})
            got = []
            for _ in range(20):
                message = queue.get(timeout=5)
                got.append(message.payload["n"])
                message.ack()
            assert got == list(range(20))
            with pytest.raises(queue.Empty):
                queue.get(block=False)
            used = conn.default_channel
            assert used._create_client().hlen(used.unacked_key) == 0
        finally:
            queue.close()
