"""A producer's own Celery app, run as a worker by tests: its task writes each job it receives.

Started with ``celery -A tests.reply_consumer worker -Q QUEUE``; settings from the environment:
REPLY_BROKER (the broker), REPLY_TASK (the task name a request's reply_to names), REPLY_FILE.
"""

from __future__ import annotations

import json
import os
from typing import Any

from celery import Celery

app = Celery("reply-consumer", broker=os.environ.get("REPLY_BROKER", "memory://"))
app.conf.update(accept_content=["json"], task_serializer="json", task_ignore_result=True,
                worker_hijack_root_logger=False)


@app.task(name=os.environ.get("REPLY_TASK", "replies.job_finished"))
def job_finished(**kwargs: Any) -> None:
    """Append what arrived (its kwargs) as a JSON line."""
    with open(os.environ["REPLY_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps(kwargs) + "\n")
