"""The operator dashboard: ``/`` (jobs), ``/jobs/<id>`` (one job), ``/login``, ``/logout``.

Server-rendered; it only reads, but for the operator forms of ``operator_forms`` (issue 17:
retry, resolve, abandon; each checks the session's CSRF token). Closed (503) until
CANCELFLOW_API_TOKEN is set, like the API. A person signs in once with that token and gets a
session cookie; a script may send the API's bearer header instead. Settings are never rendered:
pages show only what the status API shows, plus the ledger's call and callback history. Every
read is bounded, so a job of 10,000 legs costs a page of legs, counts and capped notes, never
10,000 rows (``dashboard_rows`` builds what the templates show).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, ParamSpec
from urllib.parse import urlsplit

from flask import Blueprint, abort, g, redirect, render_template, request, session, url_for
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from pydantic import SecretStr
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from webhooks import dashboard_rows as rows_
from webhooks.apidoc import Reply, operation
from webhooks.context import login_throttle, reads, settings
from worker.domain.states import JobState, Provider
from worker.services.views import job_filter, leg_view, list_jobs
from worker.services.views.dashboard import job_counts, job_detail

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
KEPT_ARGS = ("state", "provider", "q", "cursor", "legs")

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
        # sign a person out; forging the login itself would need the token. The operator
        # forms (operator_forms, issue 17) change the ledger: they also carry a per-session
        # CSRF token, checked in constant time.
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


@operation(blueprint, "GET", "/", summary="the dashboard (HTML, for people; sign in at /login)",
           replies={200: Reply("the jobs page", None, ("text/html",)),
                    302: Reply("not signed in: to /login", None),
                    503: Reply("CANCELFLOW_API_TOKEN is not set", None, ("text/html",))})
@require_operator
def jobs() -> ResponseReturnValue:
    state_arg = request.args.get("state") or None
    provider = request.args.get("provider") or None
    # The search box takes what a person has at hand: a target (batch id, merchant unique code,
    # payment reference) or an idempotency key. Targets first; a key when no target matches.
    q = (request.args.get("q") or "").strip() or None
    try:
        wheres = [job_filter(state=state_arg, provider=provider, target=q)]
        if q:
            wheres.append(job_filter(state=state_arg, provider=provider, idempotency_key=q))
    except ValueError as exc:
        abort(400, f"{exc}.")
    state = wheres[0].state
    try:
        for where in wheres:
            page = list_jobs(reads(), where=where, limit=JOBS_PER_PAGE,
                             cursor=request.args.get("cursor") or None)
            if page.jobs:
                break
    except ValueError:
        abort(400, "That page link is not one this dashboard gave out.")
    counts = job_counts(reads())
    rows = []
    for job in (listed.model_dump(mode="json") for listed in page.jobs):
        labels = {leg["id"]: rows_.label(position, leg["provider"])
                  for position, leg in enumerate(job["legs"])}
        rows.append(rows_.job_view(job, rows_.notes_of(job, NOTES_ON_LIST), labels))
    return render_template(
        "jobs.html",
        rows=rows,
        counts=[(s.value, counts.get(s, 0)) for s in JobState],
        total=sum(counts.values()),
        state=state.value if state else "",
        providers=[p.value for p in Provider],
        search={"provider": provider or "", "q": q or ""},
        cursor=request.args.get("cursor") or None,
        next_cursor=page.next_cursor,
    )


@blueprint.get("/jobs/<job_id>")
@require_operator
def job(job_id: str) -> ResponseReturnValue:
    start = request.args.get("legs", "0")
    if not start.isdigit() or len(start) > 9:
        abort(400, "legs must be a leg number.")
    first = int(start)
    detail = job_detail(reads(), job_id, first=first, legs=LEGS_PER_PAGE, notes=NOTES_ON_JOB,
                        timeline=TIMELINE_ROWS)
    if detail is None:
        abort(404, "No job has this id.")
    labels = {leg_id: rows_.label(*where) for leg_id, where in detail.positions.items()}
    notes = rows_.notes_of(detail.job, NOTES_ON_JOB, unlisted=detail.unlisted_notes)
    calls, pages = detail.calls, detail.pages
    return render_template(
        "job.html",
        view=rows_.job_view(detail.job, notes, labels),
        legs=[rows_.leg_row(leg.position + 1, leg_view(leg).model_dump(mode="json"))
              for leg in detail.legs],
        first=first,
        per_page=LEGS_PER_PAGE,
        timeline=rows_.timeline(calls, pages, labels, detail.paywall_legs),
        has_pages=bool(pages),
        calls_made=detail.totals.calls,
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
    return {"tone": lambda state: TONES.get(state or "", "plain"), "utc": rows_.utc,
            "signed_in": session.get("operator") is True, "csp_nonce": g.csp_nonce}
