"""The dashboard in a real headless Chromium, against the receiver as a gunicorn process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.wait import WebDriverWait

from devstack.stack import Stack
from tests.dashboard_seed import seed_ledger
from worker.ledger import create_ledger_engine, upgrade_ledger

pytestmark = pytest.mark.e2e

# Settings whose values are secrets: none may ever appear on a page.
SECRET_WORDS = ("TOKEN", "KEY", "SECRET", "CLIENT")


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory,
             redis_url: str) -> Iterator[tuple[Stack, dict[str, str]]]:
    """The receiver (two gunicorn workers) over a ledger seeded before it starts."""
    stack = Stack.prepare(tmp_path_factory.mktemp("dashboard-stack"), redis_url=redis_url)
    engine = create_ledger_engine(stack.settings().database_url)
    upgrade_ledger(engine)
    ids = seed_ledger(engine)
    engine.dispose()
    try:
        stack.start_receiver()
        yield stack, ids
    finally:
        stack.stop_all()


def _wait(browser: WebDriver) -> WebDriverWait[WebDriver]:
    return WebDriverWait(browser, 15)


def _screenshot(browser: WebDriver, path: Path) -> Path:
    """The whole page, however long: the viewport is made as tall as the document first."""
    height = int(browser.execute_script("return document.documentElement.scrollHeight"))
    frame = browser.get_window_size()["height"] - int(
        browser.execute_script("return window.innerHeight"))
    browser.set_window_size(1600, min(height + frame, 8000))
    assert browser.save_screenshot(str(path)), f"no screenshot written to {path}"
    return path


def _assert_no_secrets(browser: WebDriver, stack: Stack) -> None:
    secrets = [value for name, value in stack.env.items()
               if any(word in name for word in SECRET_WORDS)]
    assert len(secrets) >= 10
    for value in secrets:
        assert value not in browser.page_source, "a secret setting is on the page"
        assert value not in browser.current_url


def test_a_person_signs_in_reads_the_jobs_and_opens_one(
        browser: WebDriver, receiver: tuple[Stack, dict[str, str]], tmp_path: Path) -> None:
    """Sign in through the form, see job states and differences, open a job, sign out."""
    stack, ids = receiver
    wait = _wait(browser)

    # Given the dashboard, a person is first asked for the token.
    browser.get(stack.receiver_url + "/")
    field = wait.until(ec.visibility_of_element_located((By.ID, "token")))
    assert "/login" in browser.current_url
    _assert_no_secrets(browser, stack)

    # A wrong token is refused on the page.
    field.send_keys("not-the-token")
    browser.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "[role=alert]")))

    # The right one lets them in, with an HttpOnly, SameSite=Lax session cookie.
    browser.find_element(By.ID, "token").send_keys(stack.env["CANCELFLOW_API_TOKEN"])
    browser.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    table = wait.until(ec.visibility_of_element_located((By.ID, "jobs")))
    cookie = browser.get_cookie("cancelflow_session")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    _assert_no_secrets(browser, stack)

    # The list shows every seeded job with its state, and the mismatch with its difference.
    rows = {row.get_attribute("data-job-id"): row
            for row in table.find_elements(By.CSS_SELECTOR, "tr.job-row")}
    assert set(ids.values()) <= set(rows)
    assert "reconciled" in rows[ids["order-4712-cancel"]].text
    mismatch = rows[ids["order-4711-cancel"]].text
    assert "mismatch" in mismatch
    assert "job totals: cancelled_count expected 3, reported 2" in mismatch
    assert "failed" in rows[ids["order-4713-cancel"]].text
    big = rows[ids["event-4716-called-off"]].text
    assert "250 legs" in big and "238" in big and "pending" in big
    summary = browser.find_element(By.CSS_SELECTOR, "ul.summary").text
    assert "mismatch 2" in summary and "reconciled 1" in summary
    list_shot = _screenshot(browser, tmp_path / "dashboard-jobs.png")

    # Filtering by state with the form keeps only that state's jobs.
    browser.set_window_size(1600, 1000)
    browser.find_element(By.CSS_SELECTOR, "#state option[value=failed]").click()
    browser.find_element(By.CSS_SELECTOR, "form.filter button").click()
    wait.until(ec.url_contains("state=failed"))
    filtered = browser.find_elements(By.CSS_SELECTOR, "#jobs tr.job-row")
    assert [row.get_attribute("data-job-id") for row in filtered] == [ids["order-4713-cancel"]]

    # Opening the Paywall job by its link shows its leg, figures and timeline.
    browser.find_element(By.CSS_SELECTOR, "header a.brand").click()
    wait.until(ec.none_of(ec.url_contains("state=")))
    browser.find_element(By.LINK_TEXT, "order-4714-paywall").click()
    legs = wait.until(ec.visibility_of_element_located((By.ID, "legs")))
    assert browser.current_url.endswith(f"/jobs/{ids['order-4714-paywall']}")
    leg_rows = legs.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(leg_rows) == 1
    assert "paywall" in leg_rows[0].text and "cancelled" in leg_rows[0].text
    assert "2 / 15.25 TRY" in leg_rows[0].text and "1 / 10.25 TRY" in leg_rows[0].text
    differences = browser.find_element(By.ID, "differences").text
    assert "failed_count" in differences and "cancelled_amount" in differences
    timeline = browser.find_element(By.ID, "timeline")
    events = [row.text for row in timeline.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert len(events) == 3
    assert "cancel_bulk" in events[0] and "200" in events[0]
    assert "page 1 of 2" in events[1] and "page 2 of 2" in events[2]
    _assert_no_secrets(browser, stack)
    job_shot = _screenshot(browser, tmp_path / "dashboard-job.png")

    # Signing out ends the session: the dashboard asks for the token again.
    browser.set_window_size(1600, 1000)
    browser.find_element(By.CSS_SELECTOR, "form.logout button").click()
    wait.until(ec.visibility_of_element_located((By.ID, "token")))
    browser.get(stack.receiver_url + "/")
    wait.until(ec.url_contains("/login"))

    for shot in (list_shot, job_shot):
        assert shot.stat().st_size > 10_000, f"{shot} looks empty"
    print(f"screenshots: {list_shot} {job_shot}")


def test_a_person_resolves_a_leg_by_the_form_and_sees_the_event(
        browser: WebDriver, receiver: tuple[Stack, dict[str, str]]) -> None:
    """issue 17: the resolve form on a job page ends the leg and lists the event; the same POST
    without the form's CSRF token is refused."""
    stack, ids = receiver
    wait = _wait(browser)
    browser.get(stack.receiver_url + f"/jobs/{ids['order-4713-cancel']}")
    wait.until(ec.visibility_of_element_located((By.ID, "token"))).send_keys(
        stack.env["CANCELFLOW_API_TOKEN"])
    browser.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    actions = wait.until(ec.visibility_of_element_located((By.ID, "actions")))
    form = actions.find_element(By.CSS_SELECTOR, "form[action$='/resolve']")
    action = str(form.get_attribute("action"))

    # Without the form's token, the signed-in session's POST changes nothing.
    cookie = browser.get_cookie("cancelflow_session")
    assert cookie is not None
    forged = httpx.post(action, data={"outcome": "cancelled", "note": "forged"},
                        cookies={"cancelflow_session": cookie["value"]}, timeout=10)
    assert forged.status_code == 403

    form.find_element(By.CSS_SELECTOR, "select[name=outcome] option[value=cancelled]").click()
    form.find_element(By.NAME, "note").send_keys("cancelled in the portal, ticket 7")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    events = wait.until(ec.visibility_of_element_located((By.ID, "event-list")))
    assert "leg_resolved" in events.text and "cancelled in the portal, ticket 7" in events.text
    assert "forged" not in browser.page_source
    assert "resolved_by_operator" in browser.find_element(By.ID, "legs").text
    _assert_no_secrets(browser, stack)
