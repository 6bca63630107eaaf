"""The Celery tasks' retry options: one definition, every countdown cap below the broker's
visibility timeout (a longer countdown would let Redis hand the waiting task to a second
worker)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from tasks.ledger_retry import LEDGER_RETRY
from worker.celery_app import app
from worker.settings import Settings

TASK_MODULES = ("tasks.submit", "tasks.legs", "tasks.sweep", "tasks.noop")
TASKS_DIR = Path(__file__).resolve().parents[2] / "tasks"
# Task options that say how a task retries or acknowledges: written once, in tasks/ledger_retry.py
# (or, for acknowledgement, in the app's configuration).
RETRY_OPTIONS = {"autoretry_for", "retry_backoff", "retry_backoff_max", "retry_jitter",
                 "max_retries", "acks_late", "LEDGER_RETRY"}


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


def test_no_task_module_spells_retry_options_itself() -> None:
    """Outside tasks/ledger_retry.py no task decorator names a retry or acknowledgement option
    nor spreads LEDGER_RETRY: each retrying task takes them through ``ledger_task``."""
    spelled: list[str] = []
    for path in sorted(TASKS_DIR.glob("*.py")):
        if path.name == "ledger_retry.py":
            continue
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, ast.FunctionDef):
                continue
            for decorator in function.decorator_list:
                for node in ast.walk(decorator):
                    if isinstance(node, ast.keyword) and (node.arg in RETRY_OPTIONS or (
                            node.arg is None and isinstance(node.value, ast.Name)
                            and node.value.id in RETRY_OPTIONS)):
                        spelled.append(f"{path.name}:{function.name}")
    assert spelled == []


def test_the_restore_sweep_options_are_ones_kombu_reads() -> None:
    """kombu ignores transport options it does not know: each restore option must be one of the
    Redis channel's, and the sweep must run often enough and its lock expire soon enough."""
    from kombu.transport.redis import Channel

    from worker.celery_app import RESTORE_OPTIONS, celery_config

    options = celery_config(Settings())["broker_transport_options"]
    assert set(RESTORE_OPTIONS) <= set(Channel.from_transport_options)
    assert {k: options[k] for k in RESTORE_OPTIONS} == RESTORE_OPTIONS
    sweep = options["unacked_restore_interval"] * options["unacked_restore_throttle"]
    assert sweep <= 10 and options["unacked_mutex_expire"] <= 30
