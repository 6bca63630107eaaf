"""The ledger: tables, migrations, the units of work and their repositories, the read side.
The only place with SQL."""

from worker.ledger.engine import create_ledger_engine
from worker.ledger.migrate import upgrade_ledger
from worker.ledger.uow import SqlUnitOfWork, SqlUnitOfWorkFactory

__all__ = ["SqlUnitOfWork", "SqlUnitOfWorkFactory", "create_ledger_engine", "upgrade_ledger"]
