"""The bounded wait of a cancelled leg for figures that add up: when to read them again
(``worker.services.evidence`` explains the wait)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from worker.domain.reconciliation import LegEvidence

# Reads of a summary that does not add up, after the one made right after the cancel.
EVIDENCE_MAX_READS = 10
# What a leg's wait columns become once it has its final figures.
WAIT_OVER: dict[str, Any] = {
    "provisional_evidence": None, "evidence_deadline": None, "next_attempt_at": None,
}


def read_interval(timeout_seconds: float) -> timedelta:
    """The time between two reads: every read fits in the wait, none is wasted after it."""
    return timedelta(seconds=timeout_seconds / EVIDENCE_MAX_READS)


def start_wait(evidence: LegEvidence | None, now: datetime,
               timeout_seconds: float) -> dict[str, Any]:
    """The columns of a leg just cancelled whose figures are missing or do not add up."""
    return {
        "provisional_evidence": evidence.to_json() if evidence is not None else None,
        "evidence_deadline": now + timedelta(seconds=timeout_seconds),
        "evidence_reads": 0,
        # Figures not adding up yet are read again an interval later (the last read lands on
        # the deadline); none at all (the read failed): at the next sweep.
        "next_attempt_at": now + read_interval(timeout_seconds) if evidence is not None else now,
    }
