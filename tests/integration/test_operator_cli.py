"""``cancelflow resolve`` and ``cancelflow abandon`` (issue 17), straight on the ledger."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from tests.support import cancelflow, job_answer, set_leg, submit_job
from worker.ledger.views import LedgerReads

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
REQUEST = {"idempotency_key": "cli-ops", "legs": [
    {"provider": "bambora", "merchant": "T1", "payment_reference": f"r{i}"} for i in range(2)]}


def test_resolve_and_abandon_from_the_cli(engine: Engine, ledger_url: str) -> None:
    """resolve ends a failed leg by hand, abandon the unsent one; each prints the job's state
    and is kept as an event; a refused action is one error line and exit 1."""
    job_id = submit_job(engine, REQUEST, NOW)
    job = job_answer(LedgerReads(engine), job_id)
    assert job is not None
    failed, unsent = (leg["id"] for leg in job["legs"])
    set_leg(engine, failed, state="failed", reason="retries_exhausted", attempts=8)

    resolved = cancelflow(ledger_url, "resolve", failed, "--outcome", "rejected",
                          "--note", "merchant withdrew")
    assert resolved.exit_code == 0, resolved.output
    assert resolved.stdout.strip() == f"job {job_id}: in_progress"
    abandoned = cancelflow(ledger_url, "abandon", job_id, "--note", "called off")
    assert abandoned.exit_code == 0, abandoned.output
    assert abandoned.stdout.strip() == f"job {job_id}: failed"

    again = cancelflow(ledger_url, "abandon", job_id, "--note", "again")
    assert again.exit_code == 1
    assert again.stderr.strip() == f"error: job {job_id} is failed: nothing left to abandon"
    bad = cancelflow(ledger_url, "resolve", failed, "--outcome", "refunded", "--note", "x")
    assert bad.exit_code == 1 and "--outcome must be cancelled or rejected" in bad.stderr
    job = job_answer(LedgerReads(engine), job_id)
    assert job is not None
    assert [e["type"] for e in job["events"]] == ["leg_resolved", "job_abandoned"]
    assert {e["actor"] for e in job["events"]} == {"cli"}
    states = {leg["id"]: (leg["state"], leg["reason"]) for leg in job["legs"]}
    assert states == {failed: ("rejected", "resolved_by_operator"),
                      unsent: ("rejected", "abandoned")}
