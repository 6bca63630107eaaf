"""The Celery tasks' retry options: one definition, every countdown cap below the broker's
visibility timeout (a longer countdown would let Redis hand the waiting task to a second
worker)."""

from __future__ import annotations

import importlib

import pytest

from worker.celery_app import LEDGER_RETRY, app
from worker.settings import Settings

TASK_MODULES = ("tasks.submit", "tasks.legs", "tasks.sweep", "tasks.noop")


@pytest.fixture(scope="module")
def tasks() -> dict[str, object]:
    for module in TASK_MODULES:
        importlib.import_module(module)
    return {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}


@pytest.mark.parametrize("settings", [
    Settings(),
    # The smallest visibility timeout the settings allow.
    Settings(retry_max_seconds=0, http_timeout_seconds=0.01),
], ids=["defaults", "smallest"])
def test_every_autoretry_cap_is_below_the_visibility_timeout(
    tasks: dict[str, object], settings: Settings
) -> None:
    """Each task that retries ledger errors caps its backoff below the visibility timeout."""
    retrying = {name: task for name, task in tasks.items() if getattr(task, "autoretry_for", ())}
    assert retrying, "no task retries ledger errors"
    for name, task in retrying.items():
        cap = getattr(task, "retry_backoff_max", 600)  # Celery's default when unset
        assert getattr(task, "retry_backoff", False), name
        assert cap < settings.broker_visibility_timeout, (name, cap)


def test_ledger_retries_have_one_definition(tasks: dict[str, object]) -> None:
    """Every task that retries ledger errors takes exactly the shared options."""
    expected = {"cancellations.submit", "cancelflow.file_invalid", "cancelflow.process_leg",
                "cancelflow.process_legs", "cancelflow.settle_callbacks",
                "cancelflow.page_arrived", "cancelflow.recover_callbacks"}
    retrying = {name for name, task in tasks.items() if getattr(task, "autoretry_for", ())}
    assert retrying == expected
    for name in retrying:
        task = tasks[name]
        assert {option: getattr(task, option) for option in LEDGER_RETRY} == LEDGER_RETRY, name
