"""Logging for every cancelflow process (worker, beat, receiver, CLI): one setup, on stderr.

``CANCELFLOW_LOG_FORMAT=text`` (the default) writes ``[time] [pid] [LEVEL] logger: message``,
the shape of gunicorn's own lines, so that a receiver's log reads as one. ``json`` writes one
object a line: ``time``, ``level``, ``logger``, ``process``, ``message``, and every field the line
carries (``job_id``, ``leg_id``, ``provider``, ``state``, ``reason``, ``provider_code``, ...), for a
log pipeline to index; under gunicorn its own lines become JSON too.

Nothing logged carries a secret: the lines name settings, never their values.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from worker.settings import Settings

HANDLER_NAME = "cancelflow"
TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"
# httpx logs every request at INFO: thousands of lines a job, and CPU the legs need. Each call
# is already an attempt row in the ledger.
QUIET_LOGGERS = ("httpx", "httpcore")
GUNICORN_LOGGERS = ("gunicorn.error", "gunicorn.access")
# What every LogRecord has; anything else on a record is a field the line carries (``extra=``).
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with the record's extra fields as keys."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "message": record.getMessage(),
        }
        line.update((name, value) for name, value in vars(record).items()
                    if name not in _RECORD_ATTRIBUTES and not name.startswith("_"))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is written (a test's capture, a
    redirected stream), never to a stream that was closed since."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        return None


def make_formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    return logging.Formatter(TEXT_FORMAT, DATE_FORMAT)


def configure_logging(
    settings: Settings, level: int | str | None = None, logfile: str | None = None
) -> None:
    """Send the root logger's lines to stderr (or ``logfile``) in the configured format.

    ``level`` defaults to ``CANCELFLOW_LOG_LEVEL``. Calling it again replaces what it set up.
    """
    formatter = make_formatter(settings.log_format)
    handler: logging.Handler = (
        logging.FileHandler(logfile, encoding="utf-8") if logfile else StderrHandler()
    )
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level if level is not None else settings.log_level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    if settings.log_format == "json":
        # Under gunicorn: its own lines (boot, worker exits, access) as JSON too.
        for name in GUNICORN_LOGGERS:
            for gunicorn_handler in logging.getLogger(name).handlers:
                gunicorn_handler.setFormatter(formatter)


def gunicorn_logconfig(settings: Settings) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its own lines (master, workers, access) and the app's
    through one handler on stderr, in ``CANCELFLOW_LOG_FORMAT``."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if settings.log_format == "json"
        else {"format": TEXT_FORMAT, "datefmt": DATE_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {HANDLER_NAME: formatter},
        "handlers": {HANDLER_NAME: {"class": f"{__name__}.StderrHandler",
                                    "formatter": HANDLER_NAME}},
        "root": {"handlers": [HANDLER_NAME], "level": settings.log_level},
        "loggers": {name: {"handlers": [HANDLER_NAME], "level": "INFO", "propagate": False}
                    for name in GUNICORN_LOGGERS},
    }


def host_configured_logging() -> bool:
    """Whether someone else (a test runner, an embedding program) already set up the root
    logger; then an app factory leaves logging to them."""
    return any(h.get_name() != HANDLER_NAME for h in logging.getLogger().handlers)


def celery_log_level(celery_level: int | str | None, settings: Settings) -> int:
    """The more verbose of Celery's ``--loglevel`` (WARNING unless given) and
    ``CANCELFLOW_LOG_LEVEL``: a bare ``celery -A worker worker`` still logs at INFO."""
    ours = logging.getLevelNamesMapping()[settings.log_level]
    if celery_level is None:
        return ours
    theirs = (celery_level if isinstance(celery_level, int)
              else logging.getLevelNamesMapping().get(str(celery_level).upper(), ours))
    return min(ours, theirs)
