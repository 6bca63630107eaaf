"""The log lines that explain outcomes: a leg that ended other than cancelled, a job that ended.

Each line carries its ids as fields (``CANCELFLOW_LOG_FORMAT=json`` makes them keys), and says in
its text what a person reading the worker's log needs: which leg, which provider, why.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from worker.domain.states import JobState, LegState
from worker.providers.calls import CallRecord
from worker.services.records import LegRecord

log = logging.getLogger("cancelflow.outcomes")


def last_answer(records: Iterable[CallRecord | None]) -> CallRecord | None:
    """The provider's last answer among a round's calls (None when no call got one)."""
    answered = [record for record in records if record is not None]
    return answered[-1] if answered else None


def leg_ended(
    leg: LegRecord,
    state: LegState,
    reason: str | None,
    detail: str | None,
    answer: CallRecord | None = None,
) -> None:
    """A WARNING for a leg that ended other than cancelled: rejected, failed or refunded."""
    if not state.is_final or state is LegState.CANCELLED:
        return
    provider_code = answer.provider_code if answer else None
    http_status = answer.http_status if answer else None
    log.warning(
        "leg %s of job %s (%s) ended %s: reason %s, provider code %s, HTTP %s: %s",
        leg.id, leg.job_id, leg.provider.value, state.value, reason or "none",
        provider_code or "none", http_status or "none", detail or "no detail",
        extra={"job_id": leg.job_id, "leg_id": leg.id, "provider": leg.provider.value,
               "state": state.value, "reason": reason, "provider_code": provider_code,
               "http_status": http_status, "detail": detail},
    )


def job_ended(job_id: str, state: JobState, leg_counts: Mapping[LegState, int]) -> None:
    """One INFO line when a job reaches a final state, with its legs counted by state."""
    counts = {leg_state.value: count for leg_state, count in sorted(leg_counts.items())}
    log.info(
        "job %s ended %s: %d legs (%s)", job_id, state.value, sum(counts.values()),
        ", ".join(f"{count} {name}" for name, count in counts.items()) or "none",
        extra={"job_id": job_id, "state": state.value, "leg_counts": counts},
    )
