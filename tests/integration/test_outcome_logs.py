"""The worker's log explains outcomes: a WARNING for each leg that ends other than cancelled,
one INFO line when a job ends; with ids as fields, so JSON logs can be searched by them."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import pytest

from tests.fakes import BATCH, FakeDispatcher, FakeUnitsOfWork, ScriptedDriver, make_ctx, message
from worker.domain.outcomes import Cancelled, Outcome
from worker.domain.states import LegState
from worker.logconfig import JsonFormatter
from worker.providers.calls import CallObserver, CallRecord
from worker.providers.errors import NotCancellable, ProviderError, ProviderUnavailable
from worker.services.legs import process_leg
from worker.services.submit import submit

FIELDS = ("job_id", "leg_id", "provider", "state", "reason", "provider_code")


@dataclass
class AnsweringDriver(ScriptedDriver):
    """Records each cancel as the adapters do: a refusal with its HTTP status and code."""

    def cancel(self, target: dict[str, str], calls: CallObserver,
               on_cutoff: str = "reject") -> Outcome:
        answer = self.cancels.pop(0)
        handle = calls.before("cancel_batch")
        if isinstance(answer, ProviderError):
            calls.after(handle, CallRecord("sixdot50", "cancel_batch", answer.http_status,
                                           "refused", 1.0, answer.provider_code))
            raise answer
        calls.after(handle, CallRecord("sixdot50", "cancel_batch", 200, "ok", 1.0))
        return answer


def _run_one_leg(uows: FakeUnitsOfWork, driver: ScriptedDriver | None,
                 caplog: pytest.LogCaptureFixture, max_attempts: int = 8) -> tuple[str, str]:
    dispatcher = FakeDispatcher()
    ctx = make_ctx(uows, dispatcher, driver, max_attempts=max_attempts)
    job_id = submit(ctx, (), message()).job_id
    leg_id = dispatcher.legs[0][0]
    with caplog.at_level(logging.INFO):
        process_leg(ctx, leg_id)
    return job_id, leg_id


def _outcome_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "cancelflow.outcomes"]


def test_a_refused_leg_is_a_warning_with_its_ids_reason_and_provider_code(
    uows: FakeUnitsOfWork, caplog: pytest.LogCaptureFixture
) -> None:
    """A provider's refusal: one WARNING naming job, leg, provider, reason and the code."""
    refusal = NotCancellable("batch already submitted", provider="sixdot50",
                             operation="cancel_batch", http_status=409,
                             provider_code="BATCH_SUBMITTED")
    job_id, leg_id = _run_one_leg(uows, AnsweringDriver([refusal]), caplog)
    leg_line, job_line = _outcome_lines(caplog)
    assert leg_line.levelno == logging.WARNING
    text = leg_line.getMessage()
    for part in (job_id, leg_id, "sixdot50", "ended rejected", "reason not_cancellable",
                 "provider code BATCH_SUBMITTED", "HTTP 409", "batch already submitted"):
        assert part in text
    assert {f: getattr(leg_line, f) for f in FIELDS} == {
        "job_id": job_id, "leg_id": leg_id, "provider": "sixdot50", "state": "rejected",
        "reason": "not_cancellable", "provider_code": "BATCH_SUBMITTED"}
    assert job_line.levelno == logging.INFO
    assert job_line.getMessage() == f"job {job_id} ended failed: 1 legs (1 rejected)"
    data = json.loads(JsonFormatter().format(leg_line))
    assert {f: data[f] for f in FIELDS} == {f: getattr(leg_line, f) for f in FIELDS}
    assert json.loads(JsonFormatter().format(job_line))["leg_counts"] == {"rejected": 1}


def test_a_provider_without_settings_is_logged_as_such(
    uows: FakeUnitsOfWork, caplog: pytest.LogCaptureFixture
) -> None:
    """A leg refused for missing settings says so: the trial's 1,000 silent failures."""
    job_id, leg_id = _run_one_leg(uows, None, caplog)
    [leg_line, _job_line] = _outcome_lines(caplog)
    assert (leg_line.reason, leg_line.provider_code, leg_line.job_id, leg_line.leg_id) == (
        "provider_not_configured", None, job_id, leg_id)
    assert "sixdot50 settings are missing" in leg_line.getMessage()


def test_spent_retries_are_logged_with_the_last_answer(
    uows: FakeUnitsOfWork, caplog: pytest.LogCaptureFixture
) -> None:
    """A leg whose retries ran out ends failed / retries_exhausted, with the last HTTP status."""
    down = ProviderUnavailable("service unavailable", provider="sixdot50",
                               operation="cancel_batch", http_status=503)
    _job_id, leg_id = _run_one_leg(uows, AnsweringDriver([down]), caplog,
                                   max_attempts=1)
    leg_line, job_line = _outcome_lines(caplog)
    assert (leg_line.state, leg_line.reason, leg_line.http_status, leg_line.leg_id) == (
        "failed", "retries_exhausted", 503, leg_id)
    assert "ended failed" in job_line.getMessage()


def test_a_cancelled_leg_is_quiet_and_the_job_end_is_one_line(
    uows: FakeUnitsOfWork, caplog: pytest.LogCaptureFixture
) -> None:
    """A cancelled leg logs no warning; its job's end is one INFO line with the counts."""
    job_id, _leg_id = _run_one_leg(
        uows, ScriptedDriver([Cancelled(already=False, reference=BATCH)]), caplog)
    [job_line] = _outcome_lines(caplog)
    assert job_line.levelno == logging.INFO and job_line.state == "reconciled"
    assert job_line.leg_counts == {LegState.CANCELLED.value: 1}
    assert job_line.getMessage() == f"job {job_id} ended reconciled: 1 legs (1 cancelled)"
