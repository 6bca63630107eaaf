"""The bounded wait of a cancelled leg for figures that add up.

A 6DOT50 summary read while a payment was still settling accounts for fewer payments than the
batch holds. Such figures are provisional: the leg keeps them and reads them again, at most
``EVIDENCE_MAX_READS`` times, spread over ``CALLBACK_TIMEOUT_SECONDS`` after its cancel. The wait
ends with the latest figures in hand as soon as they add up, when that time has passed, or after
the last read, whichever comes first; the job's reconciliation then shows any difference (a
``mismatch``) instead of staying ``in_progress`` forever.

Pure decisions over a leg's record and a read; the use cases write the columns they return.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from worker.domain.evidence_wait import EVIDENCE_MAX_READS, WAIT_OVER, read_interval, start_wait
from worker.domain.reconciliation import LegEvidence
from worker.services.records import LegRecord

__all__ = ["EVIDENCE_MAX_READS", "AfterRead", "after_read", "read_interval", "start_wait"]

@dataclass(frozen=True, slots=True)
class AfterRead:
    """What a read makes of a waiting leg: its final figures (None: keep waiting), the wait
    columns to write, and why the wait ended without the figures adding up."""

    final: LegEvidence | None
    columns: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    # The wait is over and no read ever gave figures: the leg ends without them.
    without_figures: bool = False


def after_read(leg: LegRecord, read: LegEvidence | None, now: datetime,
               timeout_seconds: float) -> AfterRead:
    """Decide after one more read (``read`` None: it failed) of a leg's figures."""
    reads = leg.evidence_reads + 1
    if read is not None and read.complete:
        return AfterRead(read, {**WAIT_OVER, "evidence_reads": reads})
    # A leg cancelled before waits were bounded has no deadline yet: its wait starts now.
    deadline = leg.evidence_deadline or now + timedelta(seconds=timeout_seconds)
    latest = read
    if latest is None and leg.provisional_evidence is not None:
        latest = LegEvidence.from_json(leg.provisional_evidence)
    over = now >= deadline or reads >= EVIDENCE_MAX_READS
    if over and latest is not None:
        note = (f"its figures did not account for every payment within {timeout_seconds:g} s "
                f"of the cancel ({reads} reads): reconciled with the latest")
        return AfterRead(latest, {**WAIT_OVER, "evidence_reads": reads}, note)
    if over:
        # No read gave figures (each failed, or the answers carried none): the wait ends all
        # the same, and the job's reconciliation says the figures are missing.
        note = (f"no figures within {timeout_seconds:g} s of the cancel ({reads} reads): "
                "reconciliation shows them missing; check the provider's own report")
        return AfterRead(None, {**WAIT_OVER, "evidence_reads": reads}, note,
                         without_figures=True)
    next_read = now + read_interval(timeout_seconds)
    return AfterRead(None, {
        "provisional_evidence": latest.to_json() if latest is not None else None,
        "evidence_deadline": deadline,
        "evidence_reads": reads,
        "next_attempt_at": next_read if over else min(next_read, deadline),
    })
