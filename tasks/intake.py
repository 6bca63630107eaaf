"""Producer messages that Celery refuses before any task runs, kept as ``invalid`` jobs.

Celery turns a broker message into a task call in the worker's consumer. A message it cannot turn
into one is logged and dropped there, before any task code sees it: a body that is not JSON, a
content type it does not accept, a task name it does not know; keyword arguments that are not an
object fail a moment later, outside the task; and some shapes (a JSON object for a body, a
``timelimit`` that is not a pair) raise where nothing catches them and stop the worker.

On the producers' queue every such message is a producer's mistake, and the contract keeps it:
:class:`GuardedTask` checks each message before Celery's own strategy reads it, and
:class:`IntakeConsumer`, where Celery rejects messages, files the producer's ones as ``invalid``
jobs (through the internal task ``cancelflow.file_invalid``, so that the consumer's event loop
never waits on the ledger) and acknowledges them: never retried, never redelivered. Internal
messages keep Celery's handling (logged, dropped), minus the crashes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Task
from celery.exceptions import InvalidTaskError
from celery.worker.consumer.consumer import Consumer
from celery.worker.strategy import default as default_strategy

from tasks.event_pacing import PacedEvents
from tasks.requests import body_digest
from worker.domain.request import invalid_job_id, job_id_for_key, usable_idempotency_key
from worker.task_names import FILE_INVALID, INTERNAL_QUEUE, SUBMIT_QUEUE, SUBMIT_TASK

log = logging.getLogger(__name__)

Errors = list[dict[str, str]]
ACCEPTED_CONTENT_TYPE = "application/json"


class InvalidMessage(InvalidTaskError):  # type: ignore[misc]
    """A message that cannot become a task call; ``errors`` say why, as a job's errors do."""

    def __init__(self, errors: Errors) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['error']}" for e in errors))
        self.errors = errors


def _kind(value: object) -> str:
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             type(None): "null", int: "a number", float: "a number"}
    return kinds.get(type(value), type(value).__name__)


def body_problems(payload: Any) -> Errors:
    """What keeps a decoded body from being a task call: ``[args, kwargs, options]``
    (Celery's message protocol 2), or protocol 1's object with ``args`` and ``kwargs``."""
    if isinstance(payload, dict) and "args" in payload:
        args, kwargs, options = payload["args"], payload.get("kwargs", {}), None
    elif isinstance(payload, list) and len(payload) == 3:
        args, kwargs, options = payload
    else:
        return [{"field": "body", "error": "the body must be a JSON array [args, kwargs, "
                 f"options] (Celery's message protocol 2), not {_kind(payload)}"
                 + (f" of {len(payload)}" if isinstance(payload, list) else "")}]
    errors: Errors = []
    if not isinstance(args, list):
        errors.append({"field": "args", "error": f"args must be a JSON array, not {_kind(args)}"})
    if not isinstance(kwargs, dict):
        errors.append({"field": "kwargs",
                       "error": f"kwargs must be a JSON object, not {_kind(kwargs)}"})
    if not (options is None or isinstance(options, dict)):
        errors.append({"field": "options",
                       "error": f"the options must be a JSON object, not {_kind(options)}"})
    return errors


def header_problems(headers: dict[str, Any]) -> Errors:
    """Headers Celery reads without checking them (the ones it checks, ``eta`` and
    ``expires``, it refuses itself)."""
    errors: Errors = []
    if not (isinstance(headers.get("id"), str) and headers["id"]):
        errors.append({"field": "id", "error": "the message must carry its task id (header id)"})
    limits = headers.get("timelimit")
    if limits is not None and not (
        isinstance(limits, list | tuple) and len(limits) == 2
        and all(v is None or isinstance(v, int | float) for v in limits)
    ):
        errors.append({"field": "timelimit",
                       "error": "timelimit must be a pair [hard, soft] of seconds or nulls"})
    retries = headers.get("retries")
    if retries is not None and not (isinstance(retries, int) and retries >= 0):
        errors.append({"field": "retries", "error": "retries must be a whole number"})
    return errors


def from_producers(message: Any) -> bool:
    """Whether the message came the producers' way: their queue, or their task's name."""
    delivery = message.delivery_info or {}
    headers = message.headers if isinstance(message.headers, dict) else {}
    return (SUBMIT_QUEUE in (delivery.get("routing_key"), delivery.get("exchange"))
            or headers.get("task") == SUBMIT_TASK)


def guarded_strategy(task: Task, app: Any, consumer: Any, **options: Any) -> Callable[..., Any]:
    """Celery's strategy for ``task``, after checks of what it would read unchecked.

    A problem is raised as :class:`InvalidMessage`; the consumer's ``on_invalid_task`` then
    handles it (files it, for a producer's message). Decoding errors and refused content types
    reach its ``on_decode_error`` and ``on_invalid_task`` the same way.
    """
    handle = default_strategy(task, app, consumer, **options)

    def on_message(message: Any, body: Any, ack: Any, reject: Any, callbacks: Any,
                   **kwargs: Any) -> Any:
        if task.name != SUBMIT_TASK and from_producers(message):
            raise InvalidMessage([{"field": "task", "error": f"{task.name} is internal: "
                                   f"producers call {SUBMIT_TASK} only"}])
        if body is None and message.content_type != ACCEPTED_CONTENT_TYPE:
            raise InvalidMessage([_content_type_error(message)])
        payload = message.payload if body is None else body
        headers = message.headers if "task" in (message.headers or {}) else payload
        problems = body_problems(payload) + header_problems(
            headers if isinstance(headers, dict) else {})
        if problems:
            raise InvalidMessage(problems)
        try:
            return handle(message, body, ack, reject, callbacks, **kwargs)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            # A shape the checks above missed: refusing the message beats stopping the worker.
            log.exception("task %s: message refused", task.name)
            error = f"Celery cannot run it ({type(exc).__name__})"
            raise InvalidMessage([{"field": "message", "error": error}]) from exc

    return on_message


class GuardedTask(Task):  # type: ignore[misc]
    """The app's base task: every message is checked by :func:`guarded_strategy`."""

    Strategy = "tasks.intake:guarded_strategy"

    def retry(self, *args: Any, **options: Any) -> Any:
        """Celery's retry, keeping the message's readable arguments, which Celery's drops."""
        for name in ("argsrepr", "kwargsrepr"):
            value = getattr(self.request, name, None)
            if value and name not in options:
                options[name] = value
        return super().retry(*args, **options)


def _content_type_error(message: Any) -> dict[str, str]:
    return {"field": "content_type",
            "error": f"content type {str(message.content_type)[:100]!r} is not accepted: "
                     f"producers publish {ACCEPTED_CONTENT_TYPE}"}


def _idempotency_key(message: Any) -> str | None:
    """The request's key when the body decodes far enough to show one."""
    try:
        payload = message.decode()
    except Exception:  # the body is the problem being filed; it has no key to give
        return None
    kwargs: Any = None
    if isinstance(payload, list) and len(payload) >= 2:
        kwargs = payload[1]
    elif isinstance(payload, dict):
        kwargs = payload.get("kwargs")
    return usable_idempotency_key(kwargs.get("request")) if isinstance(kwargs, dict) else None


class IntakeConsumer(PacedEvents, Consumer):  # type: ignore[misc]
    """Celery's consumer, filing the producer messages it would drop, its task events paced
    (tasks/event_pacing.py)."""

    def file_invalid(self, message: Any, errors: Errors) -> None:
        """Hand the message to ``cancelflow.file_invalid``, then acknowledge it."""
        digest = body_digest(message.body)
        key = _idempotency_key(message)
        job_id = job_id_for_key(key) if key else invalid_job_id(digest)
        try:
            self.app.send_task(FILE_INVALID, args=[digest, key, errors], queue=INTERNAL_QUEUE,
                               argsrepr=f"job={job_id} errors={len(errors)}", kwargsrepr="{}")
        except Exception:  # the broker is failing: leave the message for redelivery
            log.exception("invalid message for job %s not filed; left unacknowledged", job_id)
            return
        message.ack_log_error(log, self.connection_errors)
        log.warning("invalid message filed as job %s: %s", job_id,
                    "; ".join(f"{e['field']}: {e['error']}" for e in errors))

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        if not from_producers(message):
            return super().on_invalid_task(body, message, exc)  # type: ignore[no-any-return]
        if isinstance(exc, InvalidMessage):
            errors = exc.errors
        elif message.content_type != ACCEPTED_CONTENT_TYPE:
            errors = [_content_type_error(message)]
        else:
            errors = [{"field": "message", "error": str(exc)[:500]}]
        self.file_invalid(message, errors)
        return None

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        if not from_producers(message):
            return super().on_decode_error(message, exc)  # type: ignore[no-any-return]
        if message.content_type != ACCEPTED_CONTENT_TYPE:
            self.file_invalid(message, [_content_type_error(message)])
        else:
            self.file_invalid(message, [{"field": "body",
                                         "error": f"the body is not valid JSON ({exc})"[:500]}])
        return None

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        if not from_producers(message):
            return super().on_unknown_task(body, message, exc)  # type: ignore[no-any-return]
        name = str((message.headers or {}).get("task", ""))[:100]
        self.file_invalid(message, [{"field": "task", "error": f"unknown task {name!r}: "
                                     f"producers call {SUBMIT_TASK}"}])
        return None

    def on_unknown_message(self, body: Any, message: Any) -> None:
        if not from_producers(message):
            return super().on_unknown_message(body, message)  # type: ignore[no-any-return]
        self.file_invalid(message, [{"field": "task", "error": "the message names no task "
                                     f"(header task): producers call {SUBMIT_TASK}"}])
        return None
