"""The operator dashboard over Flask's test client and a real SQLite ledger."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.dashboard_seed import BIG_JOB_LEGS, BULK_ID, Clock, seed_ledger
from tests.fakes import FakeDispatcher
from tests.support import text_of, text_of_html
from webhooks import create_app
from worker.ledger import create_ledger_engine
from worker.ledger.uow import SqlUnitOfWorkFactory
from worker.services.context import Context, RetryPolicy
from worker.services.submit import submit
from worker.settings import Settings

TOKEN = "dash-Tok3n-4f9c2e-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}



# The app under test


class PageDispatcher(FakeDispatcher):
    """The receiver's dispatcher: only callbacks use it, and these tests post none."""

    def page_arrived(self, bulk_payment_id: str, code: str) -> None:
        raise AssertionError("the dashboard never enqueues anything")


def make_app(tmp_path: Path, token: str | None = TOKEN) -> Flask:
    return create_app(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
                               api_token=token),  # type: ignore[arg-type]
                      dispatcher=PageDispatcher())


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("dashboard")
    app = make_app(tmp)
    engine = create_ledger_engine(f"sqlite:///{tmp / 'ledger.db'}")
    ids = seed_ledger(engine)
    engine.dispose()
    yield app, ids


@pytest.fixture
def app(seeded: tuple[Flask, dict[str, str]]) -> Flask:
    return seeded[0]


@pytest.fixture
def ids(seeded: tuple[Flask, dict[str, str]]) -> dict[str, str]:
    return seeded[1]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def clean(response: TestResponse) -> TestResponse:
    """The response, once checked to carry the token nowhere (body, headers, cookies)."""
    assert TOKEN not in response.get_data(as_text=True)
    assert TOKEN not in str(response.headers)
    return response


def signed_in(client: FlaskClient) -> FlaskClient:
    answer = clean(client.post("/login", data={"token": TOKEN, "next": "/"}))
    assert answer.status_code == 303
    return client


# Tests


def test_dashboard_answers_503_until_a_token_is_configured(tmp_path: Path) -> None:
    """Without CANCELFLOW_API_TOKEN every dashboard page is a 503 page, signed in or not."""
    client = make_app(tmp_path, token=None).test_client()
    for answer in (client.get("/"), client.get("/jobs/x"), client.get("/login"),
                   client.post("/login", data={"token": "anything"}), client.post("/logout"),
                   client.get("/", headers=AUTH)):
        assert answer.status_code == 503
        assert answer.mimetype == "text/html"
        assert "CANCELFLOW_API_TOKEN" in answer.get_data(as_text=True)


def test_unauthenticated_requests_redirect_to_login(client: FlaskClient,
                                                    ids: dict[str, str]) -> None:
    """No session and no (right) bearer token: 302 to /login, remembering the page asked for."""
    job_id = ids["order-4711-cancel"]
    for path, headers in (("/", {}), ("/?state=failed", {}), (f"/jobs/{job_id}?legs=0", {}),
                          ("/", {"Authorization": "Bearer wrong"}),
                          ("/", {"Authorization": TOKEN})):
        answer = clean(client.get(path, headers=headers))
        assert answer.status_code == 302
        assert answer.headers["Location"].startswith("/login?next=")
    answer = client.get(f"/jobs/{job_id}?legs=0&token={TOKEN}")
    assert answer.status_code == 302 and TOKEN not in answer.headers["Location"]
    assert clean(client.get("/login")).status_code == 200


def test_wrong_token_is_refused(client: FlaskClient) -> None:
    """A wrong token re-shows the form with 401, sets no session, and lets nobody in."""
    answer = clean(client.post("/login", data={"token": TOKEN + "x", "next": "/"}))
    assert answer.status_code == 401
    assert "not the right one" in answer.get_data(as_text=True)
    assert client.get_cookie("cancelflow_session") is None
    assert client.get("/").status_code == 302


def test_login_sets_a_strict_session_cookie(client: FlaskClient) -> None:
    """Signing in sets an HttpOnly, SameSite=Lax session cookie and returns to the page asked."""
    answer = clean(client.post("/login", data={"token": TOKEN, "next": "/?state=failed"}))
    assert (answer.status_code, answer.headers["Location"]) == (303, "/?state=failed")
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert clean(client.get("/")).status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example",
                                    "javascript:alert(1)"])
def test_login_never_redirects_off_site(client: FlaskClient, target: str) -> None:
    """A `next` that leaves the site is replaced by the jobs list."""
    answer = client.post("/login", data={"token": TOKEN, "next": target})
    assert answer.headers["Location"] == "/"


def test_list_shows_jobs_newest_first_with_states_and_summary(client: FlaskClient,
                                                             ids: dict[str, str]) -> None:
    """After sign-in the list names every job, its state, legs and reconciliation, newest first."""
    page = text_of(clean(signed_in(client).get("/")))
    positions = [page.index(key) for key in reversed(list(ids))]
    assert positions == sorted(positions)
    for summary in ("all 6", "reconciled 1", "mismatch 2", "failed 1", "invalid 1"):
        assert summary in page
    assert "job totals: cancelled_count expected 3, reported 2" in page
    assert "bambora T123456789 ref-2: not_cancellable - payment ref-2 is captured" in page
    assert "legs.0: Input tag 'acme'" in page  # the invalid job's validation error


def test_list_counts_the_legs_of_big_jobs_instead_of_listing_them(client: FlaskClient) -> None:
    """A job of 250 legs shows counts by leg state, not 250 rows."""
    body = clean(signed_in(client).get("/")).get_data(as_text=True)
    assert f"<strong>{BIG_JOB_LEGS}</strong> legs" in body
    row = body[body.index("event-4716-called-off"):]
    row = row[:row.index("</tr>")]
    counts = dict(re.findall(r"<li>(\d+) <span class=\"badge \w+\">.*?</span> (\w+)</span>", row))
    assert counts == {"12": "cancelled", "238": "pending"}
    assert "evt-200" not in body


def test_state_filter_shows_only_that_state(client: FlaskClient) -> None:
    """?state=mismatch lists the mismatched jobs only; an unknown state is a 400 page."""
    page = text_of(clean(signed_in(client).get("/?state=mismatch")))
    assert "order-4711-cancel" in page and "order-4714-paywall" in page
    for other in ("order-4712-cancel", "order-4713-cancel", "order-4715-bad", "event-4716"):
        assert other not in page
    answer = client.get("/?state=bogus")
    assert answer.status_code == 400 and answer.mimetype == "text/html"
    assert client.get("/?cursor=!!").status_code == 400


def test_list_pages_follow_the_api_cursor(tmp_path: Path) -> None:
    """More jobs than a page: "Older jobs" links walk every job once, newest first."""
    app = make_app(tmp_path)
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    start = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    for i in range(30):
        ctx = Context(SqlUnitOfWorkFactory(engine), {}, FakeDispatcher(), RetryPolicy(1, 1, 1), 60,
                      clock=Clock(start + timedelta(seconds=i)))
        submit(ctx, (), {"request": {"idempotency_key": f"page-job-{i:02d}", "legs": [
            {"provider": "bambora", "merchant": "T1", "payment_reference": str(i)}]}})
    engine.dispose()
    client = signed_in(app.test_client())
    seen: list[str] = []
    path: str | None = "/"
    while path:
        body = clean(client.get(path)).get_data(as_text=True)
        seen += re.findall(r">(page-job-\d\d)</a>", body)
        found = re.search(r'rel="next" href="([^"]+)"', body)
        path = found.group(1).replace("&amp;", "&") if found else None
    assert seen == [f"page-job-{i:02d}" for i in reversed(range(30))]


def test_bearer_header_is_let_in(client: FlaskClient, ids: dict[str, str]) -> None:
    """A script with the API's bearer token reads the pages without a session."""
    assert clean(client.get("/", headers=AUTH)).status_code == 200
    assert clean(client.get(f"/jobs/{ids['order-4712-cancel']}", headers=AUTH)).status_code == 200
    assert client.get_cookie("cancelflow_session") is None


def test_job_page_shows_legs_figures_and_differences(client: FlaskClient,
                                                    ids: dict[str, str]) -> None:
    """The Paywall job shows its leg, its expected vs reported figures and every difference."""
    answer = clean(signed_in(client).get(f"/jobs/{ids['order-4714-paywall']}"))
    page = text_of(answer)
    assert "scope: bulk merchant_unique_code: bulk-4714 payment_date: 2026-11-21" in page
    assert "differences below need a look" in page
    assert "paywall" in page and BULK_ID in page
    assert "2 / 15.25 TRY paywall_callbacks" in page  # expected
    assert "1 / 10.25 TRY" in page  # cancelled
    for line in ("cancelled_count expected 2, reported 1",
                 "cancelled_amount expected 15.25, reported 10.25",
                 "failed_count expected 0, reported 1"):
        assert line in page
    assert "leg 1 (paywall) cancelled_count 2 1" in page  # the differences table


def test_job_page_timeline_has_calls_and_callback_pages_in_time_order(
        client: FlaskClient, ids: dict[str, str]) -> None:
    """Calls (operation, times, HTTP status, outcome, latency) and pages, oldest first."""
    body = clean(signed_in(client).get(f"/jobs/{ids['order-4714-paywall']}")).get_data(
        as_text=True)
    timeline = body[body.index('id="timeline"'):]
    rows = [text_of_html(row) for row in re.findall(r"<tr class=\"(?:call|page)\">(.*?)</tr>",
                                                    timeline, re.S)]
    assert len(rows) == 3
    assert re.match(r"2026-11-21T09:\d\d:\d\d\.\d{3}Z leg 1 \(paywall\) call cancel_bulk "
                    r"2026-11-21T09:\d\d:\d\d\.\d{3}Z 200 ok 42\.5", rows[0])
    assert "callback page page 1 of 2, operation 81234" in rows[1]
    assert "cancel: 1 payment (10.25), 1 ok (10.25), 0 failed, 0 pending" in rows[1]
    assert "page 2 of 2" in rows[2] and "0 ok (0), 1 failed" in rows[2]
    times = [row.split(" ")[0] for row in rows]
    assert times == sorted(times)


def test_failed_job_page_explains_the_refusal(client: FlaskClient, ids: dict[str, str]) -> None:
    """A rejected leg shows its reason and detail; the timeline shows the 409."""
    page = text_of(clean(signed_in(client).get(f"/jobs/{ids['order-4713-cancel']}")))
    assert "not_cancellable" in page and "payment ref-2 is captured; refund it instead" in page
    assert "cancel_payment" in page and " 409 not_cancellable " in page
    assert "1 / 50.00 EUR" in page


def test_big_job_page_caps_the_legs_table(client: FlaskClient, ids: dict[str, str]) -> None:
    """A 250-leg job shows 200 legs and says how many more; the next page shows the rest."""
    job_id = ids["event-4716-called-off"]
    body = clean(signed_in(client).get(f"/jobs/{job_id}")).get_data(as_text=True)
    legs = body[body.index('id="legs"'):body.index("</table>", body.index('id="legs"'))]
    assert legs.count('<tr id="leg-') == 200
    assert f"{BIG_JOB_LEGS - 200} more legs not shown" in body
    rest = clean(client.get(f"/jobs/{job_id}?legs=200")).get_data(as_text=True)
    assert rest.count('<tr id="leg-') == BIG_JOB_LEGS - 200
    assert "evt-249" in rest and "more legs not shown" not in rest


def test_unknown_job_is_a_404_page(client: FlaskClient) -> None:
    """An id no job has is a 404 page, not a crash."""
    answer = clean(signed_in(client).get("/jobs/not-a-job"))
    assert answer.status_code == 404 and "No job has this id" in answer.get_data(as_text=True)


def test_pages_escape_what_producers_wrote(tmp_path: Path) -> None:
    """An idempotency key with markup is shown as text, never run."""
    app = make_app(tmp_path)
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    ctx = Context(SqlUnitOfWorkFactory(engine), {}, FakeDispatcher(), RetryPolicy(1, 1, 1), 60)
    key = "<script>alert('x')</script>"
    job_id = submit(ctx, (), {"request": {"idempotency_key": key, "legs": [
        {"provider": "bambora", "merchant": "<b>m</b>", "payment_reference": "r"}]}}).job_id
    engine.dispose()
    client = signed_in(app.test_client())
    for path in ("/", f"/jobs/{job_id}"):
        body = client.get(path).get_data(as_text=True)
        assert "<script>" not in body and "&lt;script&gt;" in body
        assert "<b>m</b>" not in body


def test_pages_forbid_scripts_framing_and_caching(client: FlaskClient) -> None:
    """Every dashboard answer carries a no-script CSP, no-store and anti-framing headers."""
    for answer in (client.get("/login"), signed_in(client).get("/")):
        csp = answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src" not in csp
        nonce = re.search(r"'nonce-([^']+)'", csp)
        assert nonce and f'<style nonce="{nonce.group(1)}">' in answer.get_data(as_text=True)
        assert answer.headers["Cache-Control"] == "no-store"
        assert answer.headers["X-Frame-Options"] == "DENY"


def test_logout_ends_the_session(client: FlaskClient) -> None:
    """After signing out the next page asks to sign in again."""
    signed_in(client)
    assert client.get("/").status_code == 200
    answer = client.post("/logout")
    assert (answer.status_code, answer.headers["Location"]) == (303, "/login")
    assert client.get("/").status_code == 302


def test_a_new_token_signs_everyone_out(tmp_path: Path) -> None:
    """A session made under one token is not honoured by a receiver configured with another."""
    old = signed_in(make_app(tmp_path).test_client())
    cookie = old.get_cookie("cancelflow_session")
    assert cookie is not None
    rotated = make_app(tmp_path, token="a-brand-new-token-0123456789abcdef").test_client()
    rotated.set_cookie("cancelflow_session", cookie.value)
    assert rotated.get("/").status_code == 302
    same = make_app(tmp_path).test_client()  # another worker process with the same token
    same.set_cookie("cancelflow_session", cookie.value)
    assert same.get("/").status_code == 200


def test_token_never_appears_on_any_page(client: FlaskClient, ids: dict[str, str]) -> None:
    """Walking every page and error, signed in and out, never shows the token."""
    for path in ("/login", "/", f"/jobs/{ids['order-4711-cancel']}"):
        clean(client.get(path))
    clean(client.post("/login", data={"token": TOKEN + "x"}))
    signed_in(client)
    paths = ["/", "/?state=failed", "/?state=bogus", "/jobs/nope",
             *(f"/jobs/{job_id}" for job_id in ids.values())]
    for path in paths:
        clean(client.get(path))
    clean(client.post("/logout"))
