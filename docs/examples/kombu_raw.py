"""Submit a cancellation as a raw Celery protocol 2 message with kombu (no Celery app).

    CANCELFLOW_REDIS_URL=redis://127.0.0.1:6379/0 python kombu_raw.py KEY [BATCH_ID]

What any producer in any language has to put on the broker: the JSON body
``[args, kwargs, embed]``, the task's name and id in the headers, routing key ``cancellations``.
The idempotency key is the first argument (or CANCELFLOW_IDEMPOTENCY_KEY); the 6DOT50 batch to
cancel the second (or CANCELFLOW_BATCH_ID). Prints the job id, which the key alone determines.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import uuid

from kombu import Connection

EXAMPLE_BATCH = "f945d71c-b00f-4e77-8175-253093157a2f"


def main(argv: list[str]) -> int:
    broker = os.environ.get("CANCELFLOW_REDIS_URL", "redis://127.0.0.1:6379/0")
    key = argv[1] if len(argv) > 1 else os.environ.get("CANCELFLOW_IDEMPOTENCY_KEY")
    if not key:
        print("usage: kombu_raw.py IDEMPOTENCY_KEY [BATCH_ID]", file=sys.stderr)
        return 2
    batch = argv[2] if len(argv) > 2 else os.environ.get("CANCELFLOW_BATCH_ID", EXAMPLE_BATCH)
    request = {
        "idempotency_key": key,
        "reason": "customer request",
        "legs": [{"provider": "sixdot50", "batch_id": batch}],
    }
    task_id = str(uuid.uuid4())
    kwargs = {"request": request}
    body = [[], kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    headers = {
        "lang": "py",
        "task": "cancellations.submit",
        "id": task_id,
        "root_id": task_id,
        "parent_id": None,
        "group": None,
        "shadow": None,
        "eta": None,
        "expires": None,
        "retries": 0,
        "timelimit": [None, None],
        "argsrepr": "()",
        "kwargsrepr": "{'request': ...}",  # shown by monitors such as Flower: keep it short
        "origin": f"{os.getpid()}@{socket.gethostname()}",
    }
    with Connection(broker) as connection:
        connection.Producer().publish(
            json.dumps(body),
            exchange="",  # the default exchange: the routing key names the queue
            routing_key="cancellations",
            content_type="application/json",
            content_encoding="utf-8",
            headers=headers,
            correlation_id=task_id,
            delivery_mode=2,  # persistent
            retry=True,
        )
    print(uuid.uuid5(uuid.NAMESPACE_URL, "cancelflow:" + key))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
