"""Submit a cancellation to cancelflow with Celery's ``send_task`` (needs ``celery[redis]``).

    CANCELFLOW_REDIS_URL=redis://127.0.0.1:6379/0 python python_send_task.py KEY [BATCH_ID]

The idempotency key is the first argument (or CANCELFLOW_IDEMPOTENCY_KEY); the 6DOT50 batch to
cancel the second (or CANCELFLOW_BATCH_ID). Prints the job id, which the key alone determines.
"""

from __future__ import annotations

import os
import sys
import uuid

from celery import Celery

EXAMPLE_BATCH = "f945d71c-b00f-4e77-8175-253093157a2f"


def main(argv: list[str]) -> int:
    broker = os.environ.get("CANCELFLOW_REDIS_URL", "redis://127.0.0.1:6379/0")
    key = argv[1] if len(argv) > 1 else os.environ.get("CANCELFLOW_IDEMPOTENCY_KEY")
    if not key:
        print("usage: python_send_task.py IDEMPOTENCY_KEY [BATCH_ID]", file=sys.stderr)
        return 2
    batch = argv[2] if len(argv) > 2 else os.environ.get("CANCELFLOW_BATCH_ID", EXAMPLE_BATCH)
    request = {
        "idempotency_key": key,
        "reason": "customer request",
        "legs": [{"provider": "sixdot50", "batch_id": batch}],
    }
    app = Celery(broker=broker)
    try:
        app.send_task("cancellations.submit", kwargs={"request": request},
                      queue="cancellations", serializer="json")
    finally:
        app.close()
    print(uuid.uuid5(uuid.NAMESPACE_URL, "cancelflow:" + key))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
