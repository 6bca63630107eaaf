"""The receiver reads the ledger only through the use cases' views: no module under webhooks/
imports the ledger package or SQLAlchemy."""

from __future__ import annotations

from pathlib import Path

from tests.support import imports_in, is_within

WEBHOOKS = Path(__file__).resolve().parents[2] / "webhooks"
FORBIDDEN = ("worker.ledger", "sqlalchemy")


def test_no_webhooks_module_imports_the_ledger_or_sqlalchemy() -> None:
    """Every import under webhooks/, lazy ones too, stays out of worker.ledger and sqlalchemy."""
    offending = [f"{path.name}:{site.line} {site.module}"
                 for path in sorted(WEBHOOKS.rglob("*.py"))
                 for site in imports_in(path)
                 if any(is_within(site.module, package) for package in FORBIDDEN)]
    assert offending == []


def test_the_check_reads_the_receiver_modules() -> None:
    """The walk finds the blueprints, so an empty result above means something."""
    names = {path.name for path in WEBHOOKS.rglob("*.py")}
    assert {"api.py", "dashboard.py", "metrics.py", "health.py", "context.py"} <= names
