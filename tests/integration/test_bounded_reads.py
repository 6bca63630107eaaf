"""Reads stay bounded whatever the jobs' sizes: legs are paged, lists are capped, memory is flat.

The ledger is filled through the use cases (``fill_job``): big jobs of cancelled Bambora legs,
each with its figures and its recorded call.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from typer.testing import CliRunner

from devstack.filled_ledger import fill_job
from webhooks import create_app
from worker.cli import app as cli
from worker.ledger import create_ledger_engine
from worker.ledger.tables import legs
from worker.settings import Settings, load_settings

TOKEN = "bounded-reads-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BIG = 2_500  # more than a job lists (1,000)
RUN = 2_300  # legs of the big job that ran: the rest are still pending


def make_app(path: Path) -> Flask:
    return create_app(Settings(database_url=f"sqlite:///{path}", api_token=TOKEN))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A ledger with a 2,500-leg job (2,300 cancelled), a 250-leg job (120 cancelled) and a
    1,100-leg job, newest last; their ids by key."""
    path = tmp_path_factory.mktemp("bounded") / "ledger.db"
    make_app(path).extensions["cancelflow"]["engine"].dispose()  # migrated
    engine = create_ledger_engine(f"sqlite:///{path}")
    ids = {"big": fill_job(engine, "big", BIG, run=RUN),
           "mid": fill_job(engine, "mid", 250, run=120),
           "over": fill_job(engine, "over", 1_100)}
    engine.dispose()
    yield path, ids


@pytest.fixture(scope="module")
def client(ledger: tuple[Path, dict[str, str]]) -> Iterator[FlaskClient]:
    app = make_app(ledger[0])
    yield app.test_client()
    app.extensions["cancelflow"]["engine"].dispose()


@pytest.fixture(scope="module")
def ids(ledger: tuple[Path, dict[str, str]]) -> dict[str, str]:
    return ledger[1]


def leg_ids_in_order(path: Path, job_id: str) -> list[str]:
    engine = create_ledger_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(legs.c.id).where(legs.c.job_id == job_id)
                                     .order_by(legs.c.position)).scalars())
    finally:
        engine.dispose()


def get(client: FlaskClient, path: str, **query: Any) -> Any:
    answer = client.get(path, query_string=query, headers=AUTH)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


@pytest.mark.parametrize("limit", [None, 333])
def test_paging_through_a_big_job_returns_each_leg_once_in_order(
        client: FlaskClient, ledger: tuple[Path, dict[str, str]], ids: dict[str, str],
        limit: int | None) -> None:
    """The job lists its first 1,000 legs and a cursor; /legs pages the rest, each leg once."""
    job = get(client, f"/api/v1/jobs/{ids['big']}")
    assert len(job["legs"]) == 1000 and job["legs_next_cursor"]
    assert job["leg_counts"]["cancelled"] == RUN and job["leg_counts"]["pending"] == BIG - RUN
    seen = [leg["id"] for leg in job["legs"]]
    cursor = job["legs_next_cursor"]
    pages = 0
    while cursor is not None:
        page = get(client, f"/api/v1/jobs/{ids['big']}/legs", cursor=cursor,
                   **({"limit": limit} if limit else {}))
        assert 0 < len(page["legs"]) <= (limit or 1000)
        seen += [leg["id"] for leg in page["legs"]]
        cursor, pages = page["next_cursor"], pages + 1
    assert pages == (2 if limit is None else 5)
    assert seen == leg_ids_in_order(ledger[0], ids["big"])


def test_legs_from_the_start_without_a_cursor(client: FlaskClient, ids: dict[str, str]) -> None:
    """Without a cursor /legs starts at the first leg; the last page's cursor is null."""
    first = get(client, f"/api/v1/jobs/{ids['mid']}/legs", limit=200)
    assert len(first["legs"]) == 200 and first["next_cursor"]
    rest = get(client, f"/api/v1/jobs/{ids['mid']}/legs", cursor=first["next_cursor"])
    assert len(rest["legs"]) == 50 and rest["next_cursor"] is None


def test_bad_leg_pages_are_client_errors(client: FlaskClient, ids: dict[str, str]) -> None:
    """A foreign or forged cursor is 400 (also another job's), an unknown job 404."""
    other = get(client, f"/api/v1/jobs/{ids['mid']}/legs", limit=10)["next_cursor"]
    for query in ({"cursor": "!!"}, {"cursor": other}, {"limit": "0"}, {"limit": "1001"}):
        answer = client.get(f"/api/v1/jobs/{ids['big']}/legs", query_string=query,
                            headers=AUTH)
        assert answer.status_code == 400, query
    assert client.get("/api/v1/jobs/nope/legs", headers=AUTH).status_code == 404
    assert client.get(f"/api/v1/jobs/{ids['big']}/legs").status_code == 401


def test_a_list_caps_each_jobs_legs_and_counts_them_all(client: FlaskClient,
                                                        ids: dict[str, str]) -> None:
    """In a list each job carries its first 100 legs, exact leg_counts, and a cursor to the
    101st leg."""
    listed = {job["id"]: job for job in get(client, "/api/v1/jobs", limit=500)["jobs"]}
    for key, total, ran in (("big", BIG, RUN), ("mid", 250, 120)):
        job = listed[ids[key]]
        assert len(job["legs"]) == 100
        assert job["leg_counts"] == {**dict.fromkeys(job["leg_counts"], 0),
                                     "cancelled": ran, "pending": total - ran}
        rest = get(client, f"/api/v1/jobs/{ids[key]}/legs", cursor=job["legs_next_cursor"],
                   limit=1)
        assert rest["legs"][0]["target"]["payment_reference"] == f"{key}-100"


def peak_bytes(fn: Any) -> int:
    """The most memory Python held while ``fn`` ran, above what it held before."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_memory_per_request_does_not_grow_with_the_job(client: FlaskClient,
                                                       ids: dict[str, str]) -> None:
    """Each answer about the 2,500-leg job takes about the memory of the same answer about a
    smaller job past the same caps: the job and the dashboard's job page with its timeline of
    500 calls (1,100 legs), a page of legs and the list's page (250 legs)."""
    client.post("/login", data={"token": TOKEN, "next": "/"})  # the dashboard's session
    in_progress = "/api/v1/jobs?state=in_progress&limit=1"  # mid (the newer), then big
    after_mid = get(client, in_progress.split("?")[0], state="in_progress", limit=1)
    assert after_mid["jobs"][0]["id"] == ids["mid"]
    pairs = [
        ("/api/v1/jobs/{over}", "/api/v1/jobs/{big}"),
        ("/api/v1/jobs/{mid}/legs?limit=100", "/api/v1/jobs/{big}/legs?limit=100"),
        (in_progress, f"{in_progress}&cursor={after_mid['next_cursor']}"),
        ("/jobs/{over}", "/jobs/{big}"),
    ]
    for small_path, big_path in pairs:
        def request(path: str) -> Any:
            return lambda: client.get(path.format(**ids), headers=AUTH).get_data()

        request(small_path)()  # warm: templates compiled, statements cached
        small = peak_bytes(request(small_path))
        big = peak_bytes(request(big_path))
        assert big <= small * 1.3 + 100_000, (big_path, small, big)


def test_cli_status_of_a_big_job_sums_every_leg_and_says_what_json_lists(
        ledger: tuple[Path, dict[str, str]], ids: dict[str, str]) -> None:
    """The table sums the figures of all 2,500 legs (read a page at a time); --json is the
    API's first 1,000 legs and says on stderr where the rest are."""
    env = {"CANCELFLOW_DATABASE_URL": f"sqlite:///{ledger[0]}"}
    load_settings.cache_clear()
    try:
        table = CliRunner().invoke(cli, ["status", ids["big"]], env=env)
        as_json = CliRunner().invoke(cli, ["status", ids["big"], "--json"], env=env)
    finally:
        load_settings.cache_clear()
    assert table.exit_code == 0, table.stderr
    assert f"{RUN} legs" in table.stdout and f"{BIG - RUN} legs" in table.stdout
    assert f"{RUN} / {RUN * 25}.00 EUR" in table.stdout  # expected, over every cancelled leg
    assert as_json.exit_code == 0, as_json.stderr
    assert f"showing the first 1000 of {BIG} legs" in as_json.stderr
    assert f"/api/v1/jobs/{ids['big']}/legs?cursor=" in as_json.stderr
