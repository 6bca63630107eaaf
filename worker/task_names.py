"""The names of the Celery tasks and queues: what producers, the dispatcher and the tasks share.

Plain constants, so that naming a task imports no Celery app (``worker.celery_app`` builds one).
"""

from __future__ import annotations

# The producers' queue and the one task they call (the contract).
SUBMIT_QUEUE = "cancellations"
SUBMIT_TASK = "cancellations.submit"

# The worker's own tasks, routed to their own queue (``task_routes`` in worker/celery_app.py).
INTERNAL_QUEUE = "cancelflow.internal"
PROCESS_LEG = "cancelflow.process_leg"
PROCESS_LEGS = "cancelflow.process_legs"
READ_EVIDENCE = "cancelflow.read_evidence"
SWEEP = "cancelflow.sweep"
SETTLE_CALLBACKS = "cancelflow.settle_callbacks"
PAGE_ARRIVED = "cancelflow.page_arrived"
RECOVER_CALLBACKS = "cancelflow.recover_callbacks"
FILE_INVALID = "cancelflow.file_invalid"
NOOP = "cancelflow.noop"
DELIVER_OUTCOME = "cancelflow.deliver_outcome"  # outcomes (issue 17)
