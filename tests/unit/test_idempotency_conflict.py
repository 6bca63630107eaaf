"""Which fields of a resubmitted request differ from the stored job's (issue 17)."""

from __future__ import annotations

from typing import Any

from worker.domain.request import CancellationRequest
from worker.services.idempotency import differing_fields

LEG = {"provider": "bambora", "merchant": "T1", "payment_reference": "r1"}
STORED_LEGS: list[tuple[str, dict[str, Any]]] = [
    ("bambora", {"merchant": "T1", "payment_reference": "r1"})]


def _stored(body: dict[str, Any]) -> dict[str, Any]:
    return CancellationRequest.model_validate(body).model_dump(mode="json", exclude={"legs"})


def test_a_default_left_out_is_the_same_request() -> None:
    """on_cutoff left out equals on_cutoff given as its default: no conflict."""
    stored = _stored({"idempotency_key": "k", "on_cutoff": "reject", "legs": [LEG]})
    again = CancellationRequest.model_validate({"idempotency_key": "k", "legs": [LEG]})
    assert differing_fields(stored, STORED_LEGS, again) == []


def test_the_differing_fields_are_named() -> None:
    """A changed option and a changed target are both named, sorted."""
    stored = _stored({"idempotency_key": "k", "legs": [LEG]})
    again = CancellationRequest.model_validate({
        "idempotency_key": "k", "mirror": True,
        "legs": [{**LEG, "payment_reference": "r2"}]})
    assert differing_fields(stored, STORED_LEGS, again) == ["legs", "mirror"]


def test_an_invalid_job_differs_in_everything_given() -> None:
    """A key first seen on an invalid message (no stored request) conflicts with a valid one."""
    again = CancellationRequest.model_validate({"idempotency_key": "k", "legs": [LEG]})
    assert "legs" in differing_fields(None, [], again)
