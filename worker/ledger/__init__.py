"""The ledger: tables, migrations, the unit of work and its queries. The only place with SQL."""

from worker.ledger.engine import create_ledger_engine
from worker.ledger.migrate import upgrade_ledger
from worker.ledger.uow import UnitOfWork

__all__ = ["UnitOfWork", "create_ledger_engine", "upgrade_ledger"]
