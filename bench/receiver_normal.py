"""The receiver committing callback pages with synchronous=NORMAL instead of FULL.

Only for the callbacks benchmark, which runs it beside the real receiver to measure what a
power-loss-proof commit of each page costs (worker/ledger/engine.py, DURABLE).
"""

from __future__ import annotations

from flask import Flask

from webhooks import create_app as create_receiver
from worker.ledger import create_ledger_engine
from worker.settings import load_settings


def create_app() -> Flask:
    app = create_receiver()
    app.extensions["cancelflow"]["engine"] = create_ledger_engine(
        load_settings().database_url, durable_synchronous="NORMAL")
    return app
