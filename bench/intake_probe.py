"""An experiment, not the product: producer messages taken several at a time, outside Celery.

What would a batch intake (issue 15) be worth? This process does what cancelflow's worker does
with each ``cancellations.submit`` message (the same use case: the job stored by the group
commit, its leg called, the round recorded, on the same ledger, adapters and sandbox), but it
takes the messages off the Redis list itself, up to a free thread's worth at a time, in one Lua
call that also files each one where kombu keeps unacknowledged messages (so the broker's own
restore would bring back what a killed probe held), and acknowledges them together. Celery's
per-message machinery (one BRPOP, one QoS pipeline, one request, one trace and one ack pipeline
a message) is what it leaves out; task events are kept, buffered and sent as one message every
50 ms as the worker's are.

Left out because a measurement does not need them (a product would): retries, invalid
messages, revocation, shutdown restore, and ``celery inspect``. Run by ``bench.latency_jobs`` as
``python -m bench.intake_probe QUEUE``; it stops on SIGTERM.
"""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis

from worker.bootstrap import process_context
from worker.services.submit import Message, carry_out
from worker.settings import load_settings

THREADS = 32
EVENT_FLUSH_SECONDS = 0.05
ACK_FLUSH_SECONDS = 0.02

# Pops up to ARGV[1] messages and files each under kombu's unacked keys, as kombu's QoS does.
POP = """
local out = {}
for i = 1, tonumber(ARGV[1]) do
  local m = redis.call('RPOP', KEYS[1])
  if not m then break end
  local tag = cjson.decode(m)['properties']['delivery_tag']
  redis.call('ZADD', KEYS[2], ARGV[2], tag)
  redis.call('HSET', KEYS[3], tag, '[' .. m .. ', "' .. KEYS[1] .. '", "' .. KEYS[1] .. '"]')
  out[#out + 1] = m
end
return out
"""


class Probe:
    def __init__(self, queue: str) -> None:
        from tasks.submit import _record_grouped, accepting
        from worker.celery_app import app

        self.queue = queue
        self.ctx = process_context()
        self.accepting = accepting
        self.record = _record_grouped
        self.redis = redis.Redis.from_url(load_settings().redis_url)
        self.pop = self.redis.register_script(POP)
        self.free = threading.Semaphore(THREADS)
        self.pool = ThreadPoolExecutor(THREADS)
        self.lock = threading.Lock()
        self.acks: list[bytes] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.stopping = threading.Event()
        self.app = app

    def take(self) -> list[bytes]:
        self.free.acquire()
        more = 1
        while more < THREADS and self.free.acquire(blocking=False):
            more += 1
        raw: list[bytes] = self.pop(keys=[self.queue, "unacked_index", "unacked"],
                                    args=[more, time.time()])
        for _ in range(more - len(raw)):
            self.free.release()
        return raw

    def handle(self, raw: bytes) -> None:
        envelope = json.loads(raw)
        body = envelope["body"]
        data = (base64.b64decode(body) if envelope["properties"].get("body_encoding") == "base64"
                else body.encode())
        args, kwargs, _ = json.loads(data)
        task_id = envelope["headers"]["id"]
        tag = envelope["properties"]["delivery_tag"]
        self.event("task-received", uuid=task_id, name=envelope["headers"]["task"])
        self.pool.submit(self.run, Message(tuple(args), kwargs,
                                           hashlib.sha256(data).hexdigest()), task_id, tag)

    def run(self, message: Message, task_id: str, tag: str) -> None:
        try:
            self.event("task-started", uuid=task_id)
            accepted = self.accepting.run([message])[0]
            carry_out(self.ctx, accepted, self.record)
            self.event("task-succeeded", uuid=task_id,
                       result=repr({"job_id": accepted.submitted.job_id}))
            with self.lock:
                self.acks.append(tag.encode())
        finally:
            self.free.release()

    def event(self, kind: str, **fields: Any) -> None:
        with self.lock:
            self.events.append((kind, fields))

    def flusher(self) -> None:
        with self.app.connection_for_write() as conn:
            dispatcher = self.app.events.Dispatcher(conn, hostname="probe@bench",
                                                     buffer_group=["task"], buffer_limit=10**6)
            last_events = 0.0
            while not self.stopping.is_set():
                time.sleep(ACK_FLUSH_SECONDS)
                with self.lock:
                    acks, self.acks = self.acks, []
                if acks:
                    pipe = self.redis.pipeline()
                    pipe.zrem("unacked_index", *acks).hdel("unacked", *acks).execute()
                if time.monotonic() - last_events >= EVENT_FLUSH_SECONDS:
                    last_events = time.monotonic()
                    with self.lock:
                        events, self.events = self.events, []
                    for kind, fields in events:
                        dispatcher.send(kind, **fields)
                    dispatcher.flush()

    def serve(self) -> None:
        threading.Thread(target=self.flusher, daemon=True).start()
        while not self.stopping.is_set():
            raw = self.take()
            if not raw:
                time.sleep(0.002)
                continue
            for one in raw:
                self.handle(one)


def main() -> None:
    probe = Probe(sys.argv[1])
    signal.signal(signal.SIGTERM, lambda *_: probe.stopping.set())
    print("probe ready", flush=True)
    probe.serve()


if __name__ == "__main__":
    main()
