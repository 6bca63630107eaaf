"""A jobs list's filters from text (the API's query string, the CLI's options, the dashboard's
search box), each refused with a message a person can act on."""

from __future__ import annotations

from datetime import datetime

from worker.domain.states import JobState, Provider
from worker.services.views.read_side import JobFilter

TEXT_MAX = 200  # an idempotency key's, a batch id's or a reference's longest


def _time(name: str, value: str) -> datetime:
    try:
        # "Z" as well as an offset; Python 3.11 reads both.
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be an ISO-8601 time, e.g. 2026-11-21T09:00:00Z") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"{name} must carry its UTC offset (Z or +03:00): times are absolute")
    return parsed


def _text(name: str, value: str) -> str:
    if len(value) > TEXT_MAX:
        raise ValueError(f"{name} is at most {TEXT_MAX} characters")
    if "\x00" in value:
        raise ValueError(f"{name} holds a NUL character")
    return value


def job_filter(*, state: str | None = None, provider: str | None = None,
               target: str | None = None, idempotency_key: str | None = None,
               since: str | None = None, until: str | None = None) -> JobFilter:
    """The filter the given (non-empty) texts ask for; ValueError says which one is wrong."""
    try:
        wanted_state = JobState(state) if state else None
    except ValueError as exc:
        raise ValueError(f"state must be one of {', '.join(s.value for s in JobState)}") from exc
    try:
        wanted_provider = Provider(provider) if provider else None
    except ValueError as exc:
        raise ValueError(
            f"provider must be one of {', '.join(p.value for p in Provider)}") from exc
    where = JobFilter(
        state=wanted_state, provider=wanted_provider,
        target=_text("target", target) if target else None,
        idempotency_key=_text("idempotency_key", idempotency_key) if idempotency_key else None,
        since=_time("since", since) if since else None,
        until=_time("until", until) if until else None,
    )
    if where.since and where.until and where.since >= where.until:
        raise ValueError("since must be before until")
    return where
