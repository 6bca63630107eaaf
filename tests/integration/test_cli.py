"""The ``cancelflow`` CLI's answers and exit codes, on a seeded ledger and a real Redis."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, inspect

from tests.support import cancelflow, job_answer, jobs_answer, one_error_line, seed_six_states
from worker.ledger.views import LedgerReads
from worker.services.views import list_jobs

REQUEST = {"idempotency_key": "order-4711-cancel", "reason": "customer request",
           "legs": [{"provider": "bambora", "merchant": "T1", "payment_reference": "ref-1"}]}


@pytest.fixture
def seeded(engine: Engine) -> list[str]:
    """Job ids of one job in each state (tests.support.seed_six_states), oldest first."""
    return seed_six_states(engine)


def test_status_of_an_unknown_id_is_one_error_line(ledger_url: str, seeded: list[str]) -> None:
    """An id no job has: exit 1 and one line on stderr naming it."""
    result = cancelflow(ledger_url, "status", "no-such-job")
    assert result.exit_code == 1
    assert one_error_line(result) == "error: no job no-such-job"


def test_status_json_prints_the_job_as_the_api_shows_it(engine: Engine, ledger_url: str,
                                                       seeded: list[str]) -> None:
    """`status ID --json` prints exactly the job the API would answer, as JSON."""
    mismatch = seeded[0]
    result = cancelflow(ledger_url, "status", mismatch, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == job_answer(LedgerReads(engine), mismatch)


def test_status_table_explains_the_outcome(ledger_url: str, seeded: list[str]) -> None:
    """Without --json, the job is a table followed by what a person should know."""
    result = cancelflow(ledger_url, "status", seeded[0])
    assert result.exit_code == 0, result.stderr
    assert "cancelflow reconciliation" in result.stdout
    assert "job totals: cancelled_count expected 3, reported 2" in result.stdout


def test_report_json_lists_the_jobs_newest_first(engine: Engine, ledger_url: str,
                                                 seeded: list[str]) -> None:
    """`report --json` lists every job; `--state` keeps only that state's."""
    result = cancelflow(ledger_url, "report", "--json")
    assert result.exit_code == 0, result.stderr
    jobs = json.loads(result.stdout)["jobs"]
    everything = jobs_answer(list_jobs(LedgerReads(engine), state=None, limit=50, cursor=None))
    assert [job["id"] for job in jobs] == [job["id"] for job in everything]
    assert set(seeded) == {job["id"] for job in jobs}

    only = cancelflow(ledger_url, "report", "--state", "mismatch", "--json")
    assert [job["id"] for job in json.loads(only.stdout)["jobs"]] == [seeded[0]]


def test_report_table_shows_every_job_and_state(ledger_url: str, seeded: list[str]) -> None:
    """The report table names each job by its key, with its state and the notes below."""
    result = cancelflow(ledger_url, "report")
    assert result.exit_code == 0, result.stderr
    for key, state in [("mismatch", "mismatch"), ("reconciled", "reconciled"),
                       ("waiting", "awaiting_callbacks"), ("refused", "failed"),
                       ("queued", "accepted"), ("broken", "invalid")]:
        assert key in result.stdout and state in result.stdout
    assert "not_cancellable - captured" in result.stdout


def test_report_of_an_unknown_state_is_one_error_line(ledger_url: str) -> None:
    """`report --state bogus` exits non-zero with one line naming the states there are."""
    assert one_error_line(cancelflow(ledger_url, "report", "--state", "bogus")).startswith(
        "error: state must be one of accepted, in_progress")


@pytest.mark.parametrize(("content", "expected"), [
    (None, "No such file or directory"),
    ('{"idempotency_key": ', "is not JSON: Expecting value at line 1"),
    ('{"idempotency_key": "k", "legs": []}', "legs: List should have at least 1 item"),
    ('{"legs": [{"provider": "bambora"}]}', "idempotency_key: Field required"),
])
def test_submit_refuses_a_bad_file_in_one_line(ledger_url: str, tmp_path: Path,
                                               content: str | None, expected: str) -> None:
    """A missing file, invalid JSON or an invalid request: exit 1, one line, nothing sent."""
    # A long path: the line must not be wrapped at the terminal's width.
    path = tmp_path / ("a-request-file-with-a-name-long-enough-to-pass-eighty-columns" + ".json")
    if content is not None:
        path.write_text(content)
    line = one_error_line(cancelflow(ledger_url, "submit", str(path)))
    assert line.startswith("error: ")
    assert expected in line
    assert path.name in line


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis.Redis]:
    """This module's Redis database, with the submit queue emptied before and after."""
    client = redis.Redis.from_url(redis_url)
    client.delete("cancellations")
    yield client
    client.delete("cancellations")
    client.close()


def test_submit_publishes_the_message_and_prints_the_job_id(
        ledger_url: str, redis_url: str, broker: redis.Redis, tmp_path: Path) -> None:
    """The console script publishes cancellations.submit with the file as `request` and prints
    the job id the contract derives from the key."""
    path = tmp_path / "request.json"
    path.write_text(json.dumps(REQUEST))
    script = Path(sys.executable).with_name("cancelflow")
    env = {**os.environ, "CANCELFLOW_DATABASE_URL": ledger_url, "CANCELFLOW_REDIS_URL": redis_url}

    done = subprocess.run([str(script), "submit", str(path)], env=env, capture_output=True,
                          text=True, timeout=60, check=False)

    assert done.returncode == 0, done.stderr
    expected = uuid.uuid5(uuid.NAMESPACE_URL, "cancelflow:" + REQUEST["idempotency_key"])
    assert done.stdout.strip() == str(expected)
    queued = broker.lrange("cancellations", 0, -1)
    assert len(queued) == 1
    message = json.loads(queued[0])
    assert message["headers"]["task"] == "cancellations.submit"
    assert message["content-type"] == "application/json"
    args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert (args, kwargs) == ([], {"request": REQUEST})


def test_migrate_brings_a_fresh_ledger_up_to_date(tmp_path: Path) -> None:
    """`migrate` on an empty SQLite file creates the schema and exits 0."""
    url = f"sqlite:///{tmp_path / 'fresh' / 'ledger.db'}"
    result = cancelflow(url, "migrate")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "ledger is up to date"
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        assert {"jobs", "legs", "attempts", "callback_pages"} <= set(
            inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrate_on_an_up_to_date_ledger_exits_zero(ledger_url: str, seeded: list[str]) -> None:
    """`migrate` again changes nothing and still exits 0."""
    result = cancelflow(ledger_url, "migrate")
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("url", ["postgresql://cancelflow:pw@127.0.0.1:1/ledger", "not-a-file"])
def test_an_unreachable_ledger_is_one_error_line(tmp_path: Path, url: str) -> None:
    """A ledger that cannot be opened is one line on stderr, not a traceback."""
    if url == "not-a-file":
        (tmp_path / "file").write_text("")
        url = f"sqlite:///{tmp_path / 'file' / 'ledger.db'}"  # a directory that is a file
    line = one_error_line(cancelflow(url, "report"))
    assert line.startswith("error: cannot open the ledger: ")
    assert "pw" not in line
