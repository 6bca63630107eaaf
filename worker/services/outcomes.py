"""Outcomes (issue 17): a finished job tells its producer, by webhook and/or Celery message.

The durable way, an outbox: the transaction that makes a job final also owes its deliveries
(``owe_outcomes``, called from ``refresh_job``); after the commit they are dispatched, and the sweep
dispatches again any whose message was lost. Each attempt is claimed first, so a delivery sent
twice is at least once, never two copies of one attempt. Deliveries never hold up the job: the job
is final before any of them is tried.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from worker.domain.deliveries import DeliveryStatus, OutcomeDelivery, OutcomeKind
from worker.domain.events import EventType
from worker.domain.request import CancellationRequest
from worker.domain.states import JobState
from worker.providers.retry import backoff
from worker.services.context import Context, RetryPolicy
from worker.services.ports import DeliveryError, OutcomeChannels
from worker.services.records import JobRecord, NewEvent
from worker.services.unit_of_work import AbstractUnitOfWork

log = logging.getLogger("cancelflow.outcomes")

# A delivery is retried until this long after the job ended, then it ends failed.
DELIVERY_WINDOW = timedelta(hours=24)
# A due time this little in the future still counts as due (clocks of two machines differ).
DUE_SLACK = timedelta(seconds=1)
SWEEP_BATCH = 1000
UNSIGNABLE_NOTIFY_URL = (
    "notify_url needs CANCELFLOW_NOTIFY_SECRET to sign the webhook, and it is not configured"
)


def notify_refusal(request: CancellationRequest, notify_configured: bool) -> list[dict[str, str]]:
    """The errors that make a request with ``notify_url`` invalid when nothing can sign it."""
    if request.notify_url is not None and not notify_configured:
        return [{"field": "notify_url", "error": UNSIGNABLE_NOTIFY_URL}]
    return []


def owe_outcomes(uow: AbstractUnitOfWork, job: JobRecord, state: JobState,
                 now: datetime) -> list[str]:
    """Owe the job's deliveries for this final state, in the caller's transaction; the ids
    owed now (none when they were owed already)."""
    request: dict[str, Any] = job.request or {}
    outbox = uow.outcomes
    owed = []
    if request.get("notify_url"):
        owed.append(outbox.owe(job.id, OutcomeKind.WEBHOOK, state.value,
                               {"url": str(request["notify_url"])}, now))
    reply_to = request.get("reply_to")
    if reply_to:
        owed.append(outbox.owe(job.id, OutcomeKind.REPLY, state.value,
                               {"task": str(reply_to["task"]), "queue": str(reply_to["queue"])},
                               now))
    return [delivery_id for delivery_id in owed if delivery_id is not None]


def dispatch_outcomes(ctx: Context, delivery_ids: list[str]) -> None:
    """Send the owed deliveries' messages; one lost here is the sweep's to send again."""
    for delivery_id in delivery_ids:
        try:
            ctx.dispatcher.deliver_outcome(delivery_id)
        except Exception as exc:  # the job is final and committed: never undo it
            log.warning("outcome %s: not dispatched (%s); the sweep will", delivery_id,
                        type(exc).__name__)


def next_try(attempts: int, ended_at: datetime, now: datetime, retry: RetryPolicy,
             rng: Callable[[], float]) -> datetime | None:
    """When to try again after ``attempts`` failed tries: the provider calls' backoff (full
    jitter), never past DELIVERY_WINDOW after the job ended; None once that has passed."""
    give_up_at = ended_at + DELIVERY_WINDOW
    if now >= give_up_at:
        return None
    delay = backoff(attempts - 1, retry.base_seconds, retry.max_seconds, rng)
    return min(now + timedelta(seconds=delay), give_up_at)


def webhook_body(job: dict[str, Any], when: datetime) -> bytes:
    """The contract's event: ``{"type": "job.finished", "timestamp", "data": JOB}``."""
    event = {"type": "job.finished", "timestamp": when.isoformat().replace("+00:00", "Z"),
             "data": job}
    return json.dumps(event, separators=(",", ":")).encode()


def shown_url(url: str) -> str:
    """The URL as logs show it: no credentials, query or fragment (they may carry a token)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2], query="",
                                     fragment=""))


def _send(channels: OutcomeChannels, delivery: OutcomeDelivery, job: dict[str, Any],
          now: datetime) -> tuple[bool, int | None, str | None]:
    """Whether it got through, the HTTP status (webhooks), the error class."""
    try:
        if delivery.kind is OutcomeKind.WEBHOOK:
            when = now.replace(microsecond=0)
            status = channels.post_webhook(delivery.destination["url"],
                                           f"{delivery.job_id}:{delivery.final_state}", when,
                                           webhook_body(job, when))
            return 200 <= status < 300, status, None
        channels.publish_reply(delivery.destination["task"], delivery.destination["queue"], job)
        return True, None, None
    except DeliveryError as exc:
        return False, None, exc.error


def _claim(ctx: Context, delivery_id: str, now: datetime) -> OutcomeDelivery | None:
    with ctx.uow() as uow:
        outbox = uow.outcomes
        delivery = outbox.get(delivery_id)
        if delivery is None or delivery.status is not DeliveryStatus.PENDING:
            return None
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now + DUE_SLACK:
            return None  # an earlier attempt's stale message: the due one comes later
        if not outbox.claim(delivery, now, now + timedelta(seconds=ctx.lease_seconds)):
            return None
        uow.commit()
    return delivery


def deliver_outcome(ctx: Context, channels: OutcomeChannels, delivery_id: str) -> float | None:
    """One attempt at a delivery, if it is due and ours; the seconds until the next, if any."""
    now = ctx.clock()
    delivery = _claim(ctx, delivery_id, now)
    if delivery is None:
        return None
    attempt = delivery.attempts + 1
    assert ctx.read_job is not None, "the composition root gives the worker a job reader"
    job = ctx.read_job(delivery.job_id)
    assert job is not None, delivery.job_id  # a foreign key: the job is there
    sent, http_status, error = _send(channels, delivery, job, now)
    done = ctx.clock()
    later = None if sent else next_try(attempt, delivery.created_at, done, ctx.retry, ctx.rng)
    status = (DeliveryStatus.DELIVERED if sent
              else DeliveryStatus.PENDING if later is not None else DeliveryStatus.FAILED)
    where = (shown_url(delivery.destination["url"]) if delivery.kind is OutcomeKind.WEBHOOK
             else f"{delivery.destination['task']} on {delivery.destination['queue']}")
    answer = f"HTTP {http_status}" if http_status is not None else error or "published"
    with ctx.uow() as uow:
        recorded = uow.outcomes.record(
            delivery_id, attempt, status=status, last_status=http_status, last_error=error,
            next_attempt_at=later, now=done)
        if recorded and status is not DeliveryStatus.PENDING:
            # The job's events say how its producer learned (or did not learn) the outcome.
            uow.events.add(NewEvent(
                delivery.job_id, (EventType.NOTIFICATION_DELIVERED if sent
                                  else EventType.NOTIFICATION_FAILED).value, done,
                details={"kind": delivery.kind.value, "final_state": delivery.final_state,
                         "to": where, "attempts": attempt, "last": answer}))
        uow.commit()
    fields = {"job_id": delivery.job_id, "delivery_id": delivery_id, "attempt": attempt}
    if not recorded:
        log.warning("outcome %s: attempt %d to %s (%s) recorded late: a newer attempt runs",
                    delivery_id, attempt, where, answer, extra=fields)
        return None
    if status is DeliveryStatus.DELIVERED:
        log.info("job %s: %s %s delivered to %s on attempt %d (%s)", delivery.job_id,
                 delivery.kind.value, delivery.final_state, where, attempt, answer, extra=fields)
        return None
    if status is DeliveryStatus.FAILED:
        log.warning("job %s: %s %s to %s failed for good after %d attempts over 24 h "
                    "(last: %s)", delivery.job_id, delivery.kind.value, delivery.final_state,
                    where, attempt, answer, extra=fields)
        return None
    assert later is not None
    log.info("job %s: %s %s to %s not delivered (%s); attempt %d at %s", delivery.job_id,
             delivery.kind.value, delivery.final_state, where, answer, attempt + 1,
             later.isoformat(), extra=fields)
    return max(0.0, (later - done).total_seconds())


def redispatch_overdue_outcomes(ctx: Context) -> int:
    """The sweep's part: deliveries owed but not sent (a worker killed after the job's commit,
    a lost message, a sender that died mid-send) are dispatched again; how many."""
    now = ctx.clock()
    with ctx.uow() as uow:
        outbox = uow.outcomes
        overdue = outbox.overdue(now - timedelta(seconds=ctx.lease_seconds), SWEEP_BATCH)
        outbox.mark_swept(overdue, now)
        uow.commit()
    dispatch_outcomes(ctx, overdue)
    if overdue:
        log.info("sweep: %d outcome deliveries dispatched again", len(overdue))
    return len(overdue)
