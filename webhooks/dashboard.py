"""The operator dashboard: ``/`` (jobs), ``/jobs/<id>`` (one job), ``/login``, ``/logout``.

Server-rendered and read-only. Closed (503) until CANCELFLOW_API_TOKEN is set, like the API. A
person signs in once with that token and gets a session cookie; a script may send the API's
bearer header instead. Settings are never rendered: pages show only what the status API shows,
plus the ledger's call and callback history. Every read is bounded, so a job of 10,000 legs costs
a page of legs and counts, never 10,000 rows.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any, ParamSpec
from urllib.parse import urlsplit

from flask import Blueprint, abort, g, redirect, render_template, request, session, url_for
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from pydantic import SecretStr
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from webhooks.context import engine, login_throttle, settings
from worker.domain.states import JobState, LegState
from worker.ledger.uow import UnitOfWork
from worker.reporting import explain
from worker.services.views import get_job, list_jobs

blueprint = Blueprint("dashboard", __name__)

P = ParamSpec("P")

SESSION_LABEL = b"cancelflow dashboard session v1"
JOBS_PER_PAGE = 25
LEGS_PER_PAGE = 200
NOTES_ON_LIST = 5
NOTES_ON_JOB = 100
TIMELINE_ROWS = 500
# Query parameters a sign-in may carry back to the page asked for; anything else is dropped, so
# nothing a person pasted into a URL is copied into a redirect.
KEPT_ARGS = ("state", "cursor", "legs")

TONES = {
    "reconciled": "good", "matched": "good", "cancelled": "good", "refunded": "good",
    "mismatch": "warn", "awaiting_callbacks": "warn", "refund_requested": "warn",
    "retrying": "warn", "unknown": "warn",
    "failed": "bad", "rejected": "bad", "invalid": "bad",
}


@blueprint.record_once
def _configure_sessions(state: BlueprintSetupState) -> None:
    token: SecretStr | None = state.app.extensions["cancelflow"]["settings"].api_token
    if token is not None:
        # Derived, not random: every gunicorn worker signs alike, and a new token signs everyone
        # out. One-way, so a cookie's signature tells nothing about the token.
        state.app.secret_key = hmac.new(
            token.get_secret_value().encode(), SESSION_LABEL, hashlib.sha256
        ).hexdigest()
    state.app.config.update(
        SESSION_COOKIE_NAME="cancelflow_session",
        SESSION_COOKIE_HTTPONLY=True,
        # CSRF: browsers do not send a Lax cookie with another site's POST, so no other site can
        # sign a person out; and every other route only reads. Forging the login itself would
        # need the token. A per-form CSRF token would add nothing here.
        SESSION_COOKIE_SAMESITE="Lax",
        # Behind TLS (an https PUBLIC_URL) the browser never sends the cookie over plain http.
        SESSION_COOKIE_SECURE=str(state.app.extensions["cancelflow"]["settings"].public_url
                                  ).startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
    )


# auth


def _token() -> SecretStr:
    token = settings().api_token
    if token is None:
        abort(503, "The dashboard is closed until CANCELFLOW_API_TOKEN is set.")
    return token


def _matches(given: str, token: SecretStr) -> bool:
    return hmac.compare_digest(given.encode(), token.get_secret_value().encode())


def _signed_in(token: SecretStr) -> bool:
    if session.get("operator") is True:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and _matches(given.strip(), token)


def _safe_next(target: str | None) -> str:
    """A path on this site to go back to after sign-in; anything else is the jobs list."""
    # Browsers drop tabs and newlines and read a backslash as "/": either could make "//host".
    if not target or not target.startswith("/") or "\\" in target or not (
            target.isascii() and target.isprintable()):
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def require_operator(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
    """503 until the token is set; a sign-in (302 to /login) without a session or bearer token."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        if not _signed_in(_token()):
            values: dict[str, Any] = dict(request.view_args or {})
            values.update((name, request.args[name]) for name in KEPT_ARGS
                          if request.args.get(name))
            return redirect(url_for("dashboard.login",
                                    next=url_for(str(request.endpoint), **values)))
        return view(*args, **kwargs)

    return wrapper


@blueprint.get("/login")
def login() -> ResponseReturnValue:
    _token()
    return render_template("login.html", next=_safe_next(request.args.get("next")))


@blueprint.post("/login")
def login_submit() -> ResponseReturnValue:
    token = _token()
    target = _safe_next(request.form.get("next"))
    client = request.remote_addr or "unknown"
    throttle = login_throttle()
    if wait := throttle.retry_after(client):
        # Not even compared: a throttled client learns nothing about its guess.
        return render_template("login.html", next=target, throttled=wait), 429, {
            "Retry-After": str(wait)}
    if not _matches(request.form.get("token", ""), token):
        throttle.failed(client)
        return render_template("login.html", next=target, refused=True), 401
    throttle.succeeded(client)
    session.clear()
    session.permanent = True
    session["operator"] = True
    return redirect(target, 303)


@blueprint.post("/logout")
def logout() -> ResponseReturnValue:
    _token()
    session.clear()
    return redirect(url_for("dashboard.login"), 303)


# pages


@blueprint.get("/")
@require_operator
def jobs() -> ResponseReturnValue:
    state_arg = request.args.get("state") or None
    try:
        state = JobState(state_arg) if state_arg else None
    except ValueError:
        abort(400, f"There is no job state {state_arg!r}.")
    try:
        page = list_jobs(engine(), state=state, limit=JOBS_PER_PAGE,
                         cursor=request.args.get("cursor") or None)
    except ValueError:
        abort(400, "That page link is not one this dashboard gave out.")
    with UnitOfWork(engine(), read_only=True) as ledger:
        counts = ledger.job_state_counts()
    return render_template(
        "jobs.html",
        rows=[_job_view(job, NOTES_ON_LIST) for job in page.jobs],
        counts=[(s.value, counts.get(s, 0)) for s in JobState],
        total=sum(counts.values()),
        state=state.value if state else "",
        cursor=request.args.get("cursor") or None,
        next_cursor=page.next_cursor,
    )


@blueprint.get("/jobs/<job_id>")
@require_operator
def job(job_id: str) -> ResponseReturnValue:
    found = get_job(engine(), job_id)
    if found is None:
        abort(404, "No job has this id.")
    start = request.args.get("legs", "0")
    if not start.isdigit():
        abort(400, "legs must be a leg number.")
    first = int(start)
    legs = found["legs"]
    labels = _leg_labels(legs)
    paywall = [leg for leg in legs if leg["provider"] == "paywall"]
    with UnitOfWork(engine(), read_only=True) as ledger:
        calls = ledger.attempts_of_job(job_id, TIMELINE_ROWS)
        pages = ledger.callback_pages_of(
            bulk_payment_ids=[leg["provider_reference"] for leg in paywall
                              if leg["provider_reference"]],
            codes=[leg["target"].get("merchant_unique_code", "") for leg in paywall
                   if not leg["provider_reference"]],
            limit=TIMELINE_ROWS,
        )
    return render_template(
        "job.html",
        view=_job_view(found, NOTES_ON_JOB),
        legs=[_leg_view(first + i + 1, leg) for i, leg in enumerate(
            legs[first:first + LEGS_PER_PAGE])],
        first=first,
        per_page=LEGS_PER_PAGE,
        timeline=_timeline(calls, pages, labels, paywall),
        calls_made=sum(leg["attempts"] for leg in legs),
        timeline_capped=len(calls) >= TIMELINE_ROWS or len(pages) >= TIMELINE_ROWS,
        timeline_rows=TIMELINE_ROWS,
    )


@blueprint.errorhandler(HTTPException)
def _error_page(exc: HTTPException) -> ResponseReturnValue:
    return render_template("error.html", code=exc.code, name=exc.name,
                           description=exc.description), exc.code or 500


@blueprint.before_request
def _nonce() -> None:
    g.csp_nonce = secrets.token_urlsafe(16)


@blueprint.after_request
def _headers(response: Response) -> Response:
    # Pages name jobs and amounts: never cached, never framed, no script of any kind.
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'nonce-{g.csp_nonce}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@blueprint.context_processor
def _helpers() -> dict[str, Any]:
    return {"tone": lambda state: TONES.get(state or "", "plain"), "utc": utc,
            "signed_in": session.get("operator") is True, "csp_nonce": g.csp_nonce}


# what the templates show


def utc(value: str | datetime | None, millis: bool = False) -> str:
    """A UTC time in ISO 8601, to the second (or millisecond): ``2026-11-21T09:00:00Z``."""
    if value is None:
        return ""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    text = when.astimezone(UTC).isoformat(timespec="milliseconds" if millis else "seconds")
    return text.replace("+00:00", "Z")


def _leg_labels(legs: list[dict[str, Any]]) -> dict[str, str]:
    return {leg["id"]: f"leg {i} ({leg['provider']})" for i, leg in enumerate(legs, 1)}


def _leg_counts(legs: list[dict[str, Any]]) -> list[tuple[str, int]]:
    counts = Counter(leg["state"] for leg in legs)
    return [(s.value, counts[s.value]) for s in LegState if counts[s.value]]


def _job_view(job: dict[str, Any], notes_shown: int) -> dict[str, Any]:
    """A job with its legs counted by state, its differences labelled and its notes capped."""
    labels = _leg_labels(job["legs"])
    recon = job["reconciliation"]
    # The differences have their own column; explain's lines add what else a person must know.
    notes = explain({**job, "reconciliation": {**recon, "differences": []}})
    return {
        "job": job,
        "leg_counts": _leg_counts(job["legs"]),
        "differences": [{**d, "where": labels.get(d["leg"], "job totals")}
                        for d in recon["differences"]],
        "notes": notes[:notes_shown],
        "more_notes": max(0, len(notes) - notes_shown),
    }


def _leg_view(number: int, leg: dict[str, Any]) -> dict[str, Any]:
    recon = leg["reconciliation"] or {}
    return {"number": number, "leg": leg, "evidence": recon.get("evidence"),
            "differences": recon.get("differences", [])}


def _page_counts(totals: dict[str, Any]) -> str:
    return "; ".join(
        f"{scope}: {t['count']} {'payment' if t['count'] == 1 else 'payments'} ({t['amount']}), "
        f"{t['ok_count']} ok ({t['ok_amount']}), {t['failed_count']} failed, "
        f"{t['pending_count']} pending"
        for scope, t in sorted(totals.items()))


def _timeline(calls: list[Any], pages: list[dict[str, Any]], labels: dict[str, str],
              paywall: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The job's provider calls and callback pages, one list in time order."""
    by_reference = {leg["provider_reference"]: labels[leg["id"]] for leg in paywall
                    if leg["provider_reference"]}
    by_code = {leg["target"].get("merchant_unique_code"): labels[leg["id"]] for leg in paywall}
    rows = [{"at": call.started_at, "leg": labels.get(call.leg_id, call.leg_id), "kind": "call",
             "what": call.operation, "finished": call.finished_at, "http": call.http_status,
             "outcome": call.outcome or "no answer recorded", "code": call.provider_code,
             "latency": call.latency_ms} for call in calls]
    rows += [{"at": page["received_at"], "kind": "callback page",
              "leg": by_reference.get(page["bulk_payment_id"])
              or by_code.get(page["merchant_unique_code"], ""),
              "what": f"page {page['page_number']} of {page['total_pages']}, "
                      f"operation {page['bulk_payment_id']}",
              "finished": None, "http": None, "code": None, "latency": None,
              "outcome": _page_counts(page["totals"] or {})} for page in pages]
    return sorted(rows, key=lambda row: row["at"])
