"""The use cases, the domain and the providers stand on their ports: no module under
worker/services, worker/domain or worker/providers imports the ledger package or SQLAlchemy.
The records the ports exchange live in worker/services/records.py, so the ledger depends on
the use cases' vocabulary and never the other way round."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import imports_in, is_within

WORKER = Path(__file__).resolve().parents[2] / "worker"
INNER = ("services", "domain", "providers")
FORBIDDEN = ("worker.ledger", "sqlalchemy")


@pytest.mark.parametrize("layer", INNER)
def test_no_inner_module_imports_the_ledger_or_sqlalchemy(layer: str) -> None:
    """Every import under the layer, lazy ones too, stays out of worker.ledger and sqlalchemy."""
    offending = [f"{path.relative_to(WORKER)}:{site.line} {site.module}"
                 for path in sorted((WORKER / layer).rglob("*.py"))
                 for site in imports_in(path)
                 if any(is_within(site.module, package) for package in FORBIDDEN)]
    assert offending == []


def test_the_ledger_builds_the_services_records() -> None:
    """The check above walks real modules: the ledger's row mapping imports the records from
    the services layer, and the services' modules are found."""
    rows = imports_in(WORKER / "ledger" / "rows.py")
    assert any(site.module == "worker.services.records" for site in rows)
    names = {path.name for path in (WORKER / "services").rglob("*.py")}
    assert {"records.py", "unit_of_work.py", "legs.py", "submit.py"} <= names
