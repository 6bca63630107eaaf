"""Idempotency conflicts (issue 17): a key submitted again with a different request.

The job stays as it is; the conflict is recorded as an ``idempotency_conflict`` event of the job,
naming the fields that differ. The same request again (a redelivery, a producer's retry) is no
conflict: requests are compared in their canonical form, defaults filled in, so a field left out
equals the same field given its default.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from worker.domain.events import EventType
from worker.domain.request import CancellationRequest, target_of
from worker.services.records import NewEvent
from worker.services.unit_of_work import AbstractUnitOfWork

log = logging.getLogger(__name__)


def differing_fields(stored_request: dict[str, Any] | None,
                     stored_legs: list[tuple[str, dict[str, Any]]],
                     request: CancellationRequest) -> list[str]:
    """The request's top-level fields whose canonical values differ from the stored job's."""
    new = request.model_dump(mode="json", exclude={"legs"})
    old = stored_request or {}
    fields = [name for name in sorted(set(new) | set(old)) if new.get(name) != old.get(name)]
    new_legs = [(str(leg.provider), target_of(leg)) for leg in request.legs]
    if new_legs != stored_legs:
        fields.append("legs")
    return sorted(fields)


def note_conflict(uow: AbstractUnitOfWork, job_id: str, request: CancellationRequest, digest: str,
                  now: datetime) -> bool:
    """Record an ``idempotency_conflict`` event if ``request`` differs from the job's own
    (in the caller's transaction); whether it did."""
    job = uow.jobs.get(job_id)
    if job is None:
        return False
    stored_legs = [(leg.provider.value, dict(leg.target)) for leg in uow.legs.of_job(job_id)]
    fields = differing_fields(job.request, stored_legs, request)
    if not fields:
        return False
    uow.events.add(NewEvent(
        job_id, EventType.IDEMPOTENCY_CONFLICT.value, now,
        note="idempotency key reused with a different request; nothing was changed",
        details={"fields": fields, "body_sha256": digest}))
    log.warning("job %s: idempotency key reused with a different request (%s); ignored",
                job_id, ", ".join(fields))
    return True
