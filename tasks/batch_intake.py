"""The producers' queue, taken several messages at a time (issue 15).

Celery's consumer takes one message at a time: one BRPOP, one QoS pipeline filing it among the
unacknowledged messages, one request with its log line and events, one trace, one pipeline to
acknowledge it. At real provider latency those costs are most of a worker's GIL (BENCHMARKS.md,
issue 15), and a plain task pays them too, so cancelflow's durable work came on top. This
consumer step takes the ``cancellations`` queue off Celery's consumer and reads it itself:

- One Lua call takes as many messages as the step has free threads (at most 1.5 times the
  worker's concurrency, ``RUNS_PER_POOL_THREAD``), in kombu's priority order, and files each one
  where kombu keeps unacknowledged messages, with the time: if the worker dies, kombu's own sweep
  hands them out again after the visibility timeout, as it does for Celery's messages.
- A clean ``cancellations.submit`` message runs the same use case as the task (the job stored by
  the group commit, its claimed legs called, their results recorded) on one of the step's
  threads, with the task's events (received, started, succeeded) for Flower.
- Acknowledgements (removing the filed copy) are made together, every ``ACK_FLUSH_SECONDS``,
  always after the job is durable and its first round recorded. A worker killed before the flush
  gets the message back later, and submitting it again changes nothing (idempotency key, legs
  compare-and-set).
- Anything else takes Celery's own way, unchanged: the message, exactly as published, moves
  (atomically with its filed copy's removal) to the internal queue, where Celery's consumer runs
  it with its checks (refused messages become invalid jobs, tasks/intake.py), its retries,
  countdowns, expiry and revocations. That covers a message that is not a clean submit call, one
  with an ``eta`` or ``expires``, a revoked one, and one whose run failed (a ledger error): the
  task retries it with backoff as before.
- At a warm shutdown the step stops taking, waits for its runs up to ``SHUTDOWN_WAIT_SECONDS``,
  and puts back at the head of the queue any message whose run has not ended.

A worker started without the ``cancellations`` queue (``-Q``) does not run the step, nor one
whose broker URL is not plain Redis (``redis://``, ``rediss://``, ``unix://``): Celery's consumer
then reads the queue as before.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import redis
from celery import bootsteps
from celery.worker import state as worker_state

from tasks.intake import ACCEPTED_CONTENT_TYPE, body_problems, header_problems
from tasks.requests import body_digest
from worker.services.submit import Message
from worker.task_names import INTERNAL_QUEUE, SUBMIT_QUEUE, SUBMIT_TASK

log = logging.getLogger(__name__)

# kombu's Redis transport: priority lists beside each queue, and where unacknowledged messages
# are filed (its defaults, which cancelflow keeps).
PRIORITY_STEPS = (0, 3, 6, 9)
PRIORITY_SEPARATOR = "\x06\x16"
UNACKED = "unacked"
UNACKED_INDEX = "unacked_index"

# Acknowledgements wait at most this long to be made together.
ACK_FLUSH_SECONDS = 0.02
# An idle step blocks on the queue this long at a time, so it sees a stop within it.
IDLE_WAIT_SECONDS = 1
# Redis unreachable: the step tries again after this long, doubling up to the cap.
OUTAGE_RETRY_SECONDS = 0.5
OUTAGE_RETRY_MAX_SECONDS = 5.0
# The step runs up to this many submit calls at once per thread of the worker's pool (48 for the
# default 32): a run holds its thread a little longer than its provider call (its job stored and
# its round recorded, each shared with other runs within a few milliseconds), so as many threads
# as the pool would keep fewer calls in flight than a plain task on the same pool. Measured at
# 100 ms provider latency on a machine fast enough that CPU was not the limit: 32 runs gave 0.86
# and 0.90 of the plain task (threads x32), 48 gave 1.02, 64 gave 1.03 for more CPU a job
# (BENCHMARKS.md, issue 15).
RUNS_PER_POOL_THREAD = 1.5
# A warm shutdown waits this long for the runs under way (Celery's soft shutdown is 10 s).
SHUTDOWN_WAIT_SECONDS = 10.0

# Takes up to ARGV[1] messages, the lists in KEYS[3..] in order, and files each one under its
# delivery tag in kombu's unacknowledged hash and index (KEYS[1], KEYS[2]), at time ARGV[2], in
# kombu's format: [message, exchange, routing key]. A message kombu could not file (not JSON, no
# tag) is returned unfiled, with an empty tag. The message's own text is filed, not re-encoded.
_TAKE = """
local taken = {}
for k = 3, #KEYS do
  while #taken < 2 * tonumber(ARGV[1]) do
    local raw = redis.call('RPOP', KEYS[k])
    if not raw then break end
    local ok, message = pcall(cjson.decode, raw)
    local tag = ''
    if ok and type(message) == 'table' and type(message['properties']) == 'table'
        and type(message['properties']['delivery_tag']) == 'string' then
      tag = message['properties']['delivery_tag']
      local info = message['properties']['delivery_info']
      local exchange, key = ARGV[3], ARGV[3]
      if type(info) == 'table' then
        if type(info['exchange']) == 'string' then exchange = info['exchange'] end
        if type(info['routing_key']) == 'string' then key = info['routing_key'] end
      end
      redis.call('ZADD', KEYS[2], ARGV[2], tag)
      redis.call('HSET', KEYS[1], tag, '[' .. raw .. ', ' .. cjson.encode(exchange) .. ', '
                 .. cjson.encode(key) .. ']')
    end
    taken[#taken + 1] = tag
    taken[#taken + 1] = raw
  end
end
return taken
"""

# Moves the filed message KEYS[1]/KEYS[2] field ARGV[1] (ARGV[2]: its raw text) to the list
# KEYS[3], at its head when ARGV[3] is '1' (next out), else at its tail.
_MOVE = """
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[1] ~= '' and redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[3] == '1' then redis.call('RPUSH', KEYS[3], ARGV[2])
else redis.call('LPUSH', KEYS[3], ARGV[2]) end
return 1
"""


def queue_lists(queue: str) -> list[str]:
    """The Redis lists holding ``queue``'s messages, in the order kombu takes them."""
    return [f"{queue}{PRIORITY_SEPARATOR}{p}" if p else queue for p in PRIORITY_STEPS]


class Taken:
    """One message off the queue: its delivery tag ('' if unfiled) and its text as stored."""

    __slots__ = ("raw", "tag")

    def __init__(self, tag: str, raw: bytes) -> None:
        self.tag = tag
        self.raw = raw


class SubmitCall:
    """A clean ``cancellations.submit`` call read from a message, and what its events show."""

    __slots__ = ("argsrepr", "kwargsrepr", "message", "task_id")

    def __init__(self, task_id: str, message: Message, argsrepr: str, kwargsrepr: str) -> None:
        self.task_id = task_id
        self.message = message
        self.argsrepr = argsrepr
        self.kwargsrepr = kwargsrepr


def submit_call(raw: bytes) -> SubmitCall | None:
    """The submit call in a message, or None when Celery's own handling must see it."""
    try:
        envelope = json.loads(raw)
        headers, properties = envelope["headers"], envelope["properties"]
        if (envelope.get("content-type") != ACCEPTED_CONTENT_TYPE
                or envelope.get("content-encoding", "utf-8") != "utf-8"
                or not isinstance(headers, dict) or headers.get("task") != SUBMIT_TASK
                or headers.get("eta") is not None or headers.get("expires") is not None
                or header_problems(headers)):
            return None
        body = envelope["body"]
        if properties.get("body_encoding") == "base64":
            data = base64.b64decode(body, validate=True)
        elif isinstance(body, str):
            data = body.encode()
        else:
            return None
        payload = json.loads(data)
        if not isinstance(payload, list) or body_problems(payload):
            return None
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    task_id = headers["id"]
    if task_id in worker_state.revoked:
        return None
    args, kwargs, _ = payload
    return SubmitCall(task_id, Message(tuple(args), kwargs, body_digest(data)),
                      str(headers.get("argsrepr") or repr(args))[:1024],
                      str(headers.get("kwargsrepr") or repr(kwargs))[:1024])


class Intake:
    """The step's reader thread, its runners, and its acknowledgements."""

    def __init__(self, client: redis.Redis, run: Callable[[Message], dict[str, Any]],
                 send_event: Callable[..., None], concurrency: int) -> None:
        self.client = client
        self.lists = queue_lists(SUBMIT_QUEUE)
        self.take_script = client.register_script(_TAKE)
        self.move_script = client.register_script(_MOVE)
        self.run = run
        self.send_event = send_event
        self.concurrency = concurrency
        self.free = threading.Semaphore(concurrency)
        self.runners = ThreadPoolExecutor(concurrency, thread_name_prefix="intake")
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.run_ended = threading.Condition(self.lock)  # notified when a run leaves ``running``
        self.acks: list[str] = []
        self.acks_waiting = threading.Event()  # set when a run ends
        self.running: dict[str, bytes] = {}  # tag -> raw, for the runs not yet ended
        self.threads: list[threading.Thread] = []
        # What the worker's log says at shutdown.
        self.taken = 0
        self.takes = 0
        self.handed = 0

    def start(self) -> None:
        for target, name in ((self.read, "intake-reader"), (self.acknowledge, "intake-acks")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self.threads.append(thread)

    # The reader ---------------------------------------------------------------------------

    def read(self) -> None:
        backoff = OUTAGE_RETRY_SECONDS
        while not self.stopping.is_set():
            try:
                self.take_and_start()
                backoff = OUTAGE_RETRY_SECONDS
            except redis.RedisError as exc:
                log.warning("intake: Redis unreachable (%s); trying again in %.1f s",
                            type(exc).__name__, backoff)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, OUTAGE_RETRY_MAX_SECONDS)
            except Exception:  # a bug here must not silently stop the queue's intake
                log.exception("intake: reading the queue failed; trying again")
                self.stopping.wait(OUTAGE_RETRY_SECONDS)

    def take_and_start(self) -> None:
        if not self.free.acquire(timeout=IDLE_WAIT_SECONDS):
            return
        slots = 1
        while slots < self.concurrency and self.free.acquire(blocking=False):
            slots += 1
        try:
            taken = self.take(slots)
            if not taken:
                taken = self.wait_and_take(slots)
        except BaseException:
            for _ in range(slots):
                self.free.release()
            raise
        for _ in range(slots - len(taken)):
            self.free.release()
        for one in taken:
            try:
                self.start_one(one)
            except Exception:  # it stays filed: kombu's sweep hands it out after the timeout
                log.exception("intake: message %s not started", one.tag)
                self.free.release()

    def take(self, slots: int) -> list[Taken]:
        flat = self.take_script(keys=[UNACKED, UNACKED_INDEX, *self.lists],
                                args=[slots, time.time(), SUBMIT_QUEUE])
        self.takes += 1
        taken = [Taken(tag.decode(), raw) for tag, raw in zip(flat[::2], flat[1::2], strict=True)]
        self.taken += len(taken)
        return taken

    def wait_and_take(self, slots: int) -> list[Taken]:
        """An empty queue: block until a message comes (at most ``IDLE_WAIT_SECONDS``), then
        take as above.

        The wait moves the queue's next message from its tail to its tail (``BLMOVE``, Redis
        >= 6.2): it returns when there is one, and never holds one outside Redis, so no crash
        can lose a message here (a ``BRPOP`` would hold it, as kombu's does, until filed). A
        message in a priority list is taken by the read that follows, within the same bound.
        """
        if self.stopping.is_set():
            return []
        self.client.blmove(SUBMIT_QUEUE, SUBMIT_QUEUE, IDLE_WAIT_SECONDS, "RIGHT", "RIGHT")
        return self.take(slots)

    def start_one(self, one: Taken) -> None:
        call = submit_call(one.raw) if one.tag else None
        if call is None:
            self.hand_over(one)
            self.free.release()
            return
        with self.lock:
            self.running[one.tag] = one.raw
        self.send_event("task-received", uuid=call.task_id, name=SUBMIT_TASK,
                        args=call.argsrepr, kwargs=call.kwargsrepr, root_id=call.task_id,
                        parent_id=None, retries=0, eta=None, expires=None)
        self.runners.submit(self.run_one, one, call)

    # The runners --------------------------------------------------------------------------

    def run_one(self, one: Taken, call: SubmitCall) -> None:
        try:
            started = time.monotonic()
            self.send_event("task-started", uuid=call.task_id)
            try:
                result = self.run(call.message)
            except Exception as exc:
                log.warning("intake: %s[%s] failed (%s: %s); handed to the task's retries",
                            SUBMIT_TASK, call.task_id, type(exc).__name__, str(exc)[:300])
                self.send_event("task-retried", uuid=call.task_id,
                                exception=f"{type(exc).__name__}({str(exc)[:500]!r})",
                                traceback="")
                with self.lock:
                    self.running.pop(one.tag, None)
                    self.run_ended.notify_all()
                self.hand_over(one)
                return
            self.send_event("task-succeeded", uuid=call.task_id, result=repr(result),
                            runtime=time.monotonic() - started)
            with self.lock:
                self.running.pop(one.tag, None)
                self.run_ended.notify_all()
                self.acks.append(one.tag)
            self.acks_waiting.set()
        finally:
            self.free.release()

    def hand_over(self, one: Taken) -> None:
        """The message, as published, to Celery's consumer on the internal queue."""
        try:
            self.move_script(keys=[UNACKED, UNACKED_INDEX, INTERNAL_QUEUE],
                             args=[one.tag, one.raw, "0"])
            self.handed += 1
        except redis.RedisError:
            # Still filed as unacknowledged: kombu's sweep hands it out after the timeout.
            log.exception("intake: message %s not handed over; it comes back after the "
                          "broker's visibility timeout", one.tag)

    # Acknowledgements ---------------------------------------------------------------------

    def acknowledge(self) -> None:
        # Idle, the thread sleeps until a run ends (bounded, to see a stop); then it lets
        # ACK_FLUSH_SECONDS' worth of runs end and removes their filed copies together.
        while not self.stopping.is_set():
            if not self.acks_waiting.wait(IDLE_WAIT_SECONDS):
                continue
            if self.stopping.wait(ACK_FLUSH_SECONDS):
                break
            self.acks_waiting.clear()
            self.flush_acks()
        self.flush_acks()

    def flush_acks(self) -> None:
        with self.lock:
            tags, self.acks = self.acks, []
        if not tags:
            return
        try:
            pipe = self.client.pipeline()
            pipe.zrem(UNACKED_INDEX, *tags)
            pipe.hdel(UNACKED, *tags)
            pipe.execute()
        except redis.RedisError:
            with self.lock:
                self.acks[:0] = tags  # the next flush tries them again

    # Shutdown -----------------------------------------------------------------------------

    def stop(self) -> None:
        self.stopping.set()
        self.acks_waiting.set()
        for thread in self.threads:
            thread.join(IDLE_WAIT_SECONDS + 5)
        self.runners.shutdown(wait=False)
        with self.lock:
            self.run_ended.wait_for(lambda: not self.running, timeout=SHUTDOWN_WAIT_SECONDS)
            unfinished = dict(self.running)
        for tag, raw in unfinished.items():
            try:
                self.move_script(keys=[UNACKED, UNACKED_INDEX, SUBMIT_QUEUE],
                                 args=[tag, raw, "1"])
            except redis.RedisError:
                log.warning("intake: message %s left for the broker's sweep", tag)
        self.flush_acks()
        if unfinished:
            log.warning("intake: %d run(s) unfinished at shutdown; their messages are back in "
                        "the queue", len(unfinished))
        if self.takes:
            log.info("intake: %d messages taken in %d reads (%.1f a read), %d handed to "
                     "Celery's consumer", self.taken, self.takes, self.taken / self.takes,
                     self.handed)


class BatchIntake(bootsteps.StartStopStep):  # type: ignore[misc]
    """The consumer step reading the producers' queue (see the module's docstring)."""

    requires = ("celery.worker.consumer.tasks:Tasks", "celery.worker.consumer.events:Events")

    def __init__(self, c: Any, **kwargs: Any) -> None:
        super().__init__(c, **kwargs)
        self.intake: Intake | None = None

    def start(self, c: Any) -> None:
        if SUBMIT_QUEUE not in {queue.name for queue in c.task_consumer.queues}:
            return
        url = str(c.app.conf.broker_url or "")
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            # Another broker (or a Sentinel URL): Celery's consumer keeps the queue.
            log.warning("intake: broker %s is not plain Redis; Celery's consumer reads %s",
                        urlsplit(url).scheme or "?", SUBMIT_QUEUE)
            return
        c.task_consumer.cancel_by_queue(SUBMIT_QUEUE)
        if self.intake is not None:
            return
        from tasks.submit import run_submit

        client = redis.Redis.from_url(url, socket_timeout=30,
                                      socket_connect_timeout=10, health_check_interval=30)

        def send_event(kind: str, **fields: Any) -> None:
            # Events are for monitoring; the ledger holds the jobs: one that cannot be sent
            # (the broker away) never stops a run.
            dispatcher = c.event_dispatcher
            try:
                if dispatcher is not None:
                    dispatcher.send(kind, **fields)
            except Exception as exc:
                log.debug("intake: %s event not sent (%s)", kind, type(exc).__name__)

        runs = max(1, round(c.controller.concurrency * RUNS_PER_POOL_THREAD))
        self.intake = Intake(client, run_submit, send_event, runs)
        self.intake.start()

    def shutdown(self, c: Any) -> None:
        if self.intake is not None:
            self.intake.stop()
            self.intake = None
