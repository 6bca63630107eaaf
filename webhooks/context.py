"""Access to what ``create_app`` built, from inside a request."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from webhooks.login_throttle import LoginThrottle
from worker.providers.paywall.callbacks import CallbackPage
from worker.services.audit import AuditLedger
from worker.services.callbacks import Stored, store_page
from worker.services.unit_of_work import UnitOfWorkFactory
from worker.services.views import ReadSide
from worker.settings import Settings


def settings() -> Settings:
    value: Settings = current_app.extensions["cancelflow"]["settings"]
    return value


def login_throttle() -> LoginThrottle:
    value: LoginThrottle = current_app.extensions["cancelflow"]["login_throttle"]
    return value


def reads() -> ReadSide:
    """The read side the API, the dashboard and the metrics read the ledger through."""
    value: ReadSide = current_app.extensions["cancelflow"]["reads"]
    return value


def units() -> UnitOfWorkFactory:
    """The ledger's units of work, for the write use cases (callbacks, operator actions)."""
    value: UnitOfWorkFactory = current_app.extensions["cancelflow"]["units"]
    return value


def audit() -> AuditLedger:
    """The ledger's audit port: a job's calls for export."""
    value: AuditLedger = current_app.extensions["cancelflow"]["audit"]
    return value


def store_callback_page(page: CallbackPage, raw: bytes, now: datetime) -> Stored:
    """Commit a Paywall callback page to the app's ledger (the callbacks use case)."""
    return store_page(units(), page, raw, now)
