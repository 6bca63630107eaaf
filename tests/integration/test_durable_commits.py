"""On a SQLite ledger, the commits that are acknowledged to someone (a callback page answered
200, a producer's message acked) or precede a provider call run with synchronous=FULL; the
others keep NORMAL. Read from the connection at each commit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from tests.fakes import BATCH, FakeDispatcher, ScriptedDriver, make_ctx, message
from tests.fakes.providers import paywall_callback_page as paywall_page
from worker.domain.outcomes import Cancelled
from worker.ledger import create_ledger_engine, upgrade_ledger
from worker.ledger.uow import SqlUnitOfWorkFactory
from worker.providers.paywall.callbacks import parse_callback
from worker.services.callbacks import store_page
from worker.services.legs import claim_legs, run_claimed
from worker.services.submit import submit

FULL, NORMAL = 2, 1  # what PRAGMA synchronous answers


@pytest.fixture
def sqlite_ledger(tmp_path: Path) -> Iterator[tuple[Engine, list[int]]]:
    """A migrated SQLite ledger, and the synchronous level of each commit made on it."""
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    upgrade_ledger(engine)
    levels: list[int] = []

    @event.listens_for(engine, "commit")
    def _level(conn: Any) -> None:
        cursor = conn.connection.dbapi_connection.cursor()
        levels.append(cursor.execute("PRAGMA synchronous").fetchone()[0])
        cursor.close()

    yield engine, levels
    engine.dispose()


def commits_of(levels: list[int], action: Any) -> list[int]:
    """The levels of the commits ``action`` makes."""
    levels.clear()
    action()
    return list(levels)


def test_each_path_commits_at_its_level(
    sqlite_ledger: tuple[Engine, list[int]], dispatcher: FakeDispatcher
) -> None:
    """A callback page, a submit and a claim commit with FULL; a round's record with NORMAL,
    on the same pooled connection right after."""
    engine, levels = sqlite_ledger
    raw = json.dumps(paywall_page()).encode()
    uows = SqlUnitOfWorkFactory(engine)
    assert commits_of(levels, lambda: store_page(
        uows, parse_callback(raw), raw, datetime.now(UTC))) == [FULL]
    ctx = make_ctx(uows, dispatcher, ScriptedDriver([Cancelled(already=False,
                                                                 reference=BATCH)]))
    assert commits_of(levels, lambda: submit(ctx, (), message("durable"))) == [FULL]
    assert commits_of(levels, lambda: submit(ctx, (), {"request": "no"})) == [FULL]
    claims: list[Any] = []
    assert commits_of(levels, lambda: claims.extend(
        claim_legs(ctx, [dispatcher.legs[0][0]]))) == [FULL]
    assert commits_of(levels, lambda: run_claimed(ctx, claims)) == [NORMAL]
