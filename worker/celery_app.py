"""The Celery app, configured for no loss and no harmful duplicates on Redis.

Why each setting is there is written in the README ("Celery settings").
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, signals
from kombu.entity import Queue

from worker.logconfig import celery_log_level, configure_logging
from worker.settings import Settings, load_settings
from worker.task_names import INTERNAL_QUEUE, SUBMIT_QUEUE, SWEEP

log = logging.getLogger(__name__)


# How soon Redis hands out again a message a dead worker took. kombu sweeps for messages past
# the visibility timeout under a lock in Redis: by default every 10th run of a 10 s timer (up to
# ~100 s late), and a worker killed while holding the lock (a sweep also runs as a worker
# starts) blocks every sweep for the lock's 300 s. Seen in `make chaos`: 22 jobs' messages held
# 240 s after the last fault, behind a lock with 49 s left. A sweep is one ZRANGE on the unacked
# index; each restore is a WATCHed transaction, so two sweeps at once cannot restore a message
# twice, and a short lock is safe.
RESTORE_OPTIONS = {
    "unacked_restore_interval": 10,  # seconds between sweeps
    "unacked_restore_throttle": 1,  # every run of the timer sweeps
    "unacked_mutex_expire": 30,  # a dead sweeper blocks the others 30 s, not 300
}


def celery_config(settings: Settings) -> dict[str, Any]:
    return {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_transport_options": {
            "visibility_timeout": settings.broker_visibility_timeout,
            **RESTORE_OPTIONS,
        },
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # Provider calls wait on the network: threads overlap them in one process, which keeps
        # one token cache and one connection pool per provider, and memory low (README).
        "worker_pool": "threads",
        # Enough threads to keep the calls one process can afford in flight at real provider
        # latency (at 100 ms, 8 threads capped a process near 80 jobs/s); README "Concurrency".
        "worker_concurrency": 32,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_track_started": True,
        "worker_soft_shutdown_timeout": 10.0,
        "worker_enable_soft_shutdown_on_idle": True,
        # The threads pool cannot cancel a running task, and need not: its message comes back
        # after the visibility timeout and the leg's compare-and-set makes the rerun harmless.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        # Messages Celery refuses before any task runs are kept as invalid jobs (tasks/intake.py).
        "worker_consumer": "tasks.intake:IntakeConsumer",
        "task_default_queue": SUBMIT_QUEUE,
        "task_queues": (Queue(SUBMIT_QUEUE), Queue(INTERNAL_QUEUE)),
        # Routing lives here, not on the tasks (Celery 5.7 deprecates a task's own queue).
        "task_routes": {"cancelflow.*": {"queue": INTERNAL_QUEUE}},
        "task_create_missing_queues": True,
        "enable_utc": True,
        "timezone": "UTC",
        "beat_schedule": {
            "sweep": {
                "task": SWEEP,
                "schedule": settings.sweep_interval_seconds,
                # A sweep that waited longer than one interval is superseded by the next one.
                "options": {"expires": settings.sweep_interval_seconds},
            }
        },
    }


def create_celery(settings: Settings | None = None) -> Celery:
    celery = Celery("cancelflow", task_cls="tasks.intake:GuardedTask",
                    include=["tasks.submit", "tasks.legs", "tasks.sweep", "tasks.noop",
                             "tasks.outcomes"])
    celery.conf.update(celery_config(settings or load_settings()))
    # The producers' queue is read several messages at a time (tasks/batch_intake.py).
    celery.steps["consumer"].add("tasks.batch_intake:BatchIntake")
    return celery


app = create_celery()


def _migrate(**_kwargs: Any) -> None:
    # Every process brings the ledger's schema up to date when it starts.
    from worker.ledger import create_ledger_engine, upgrade_ledger

    engine = create_ledger_engine(load_settings().database_url)
    try:
        upgrade_ledger(engine)
    finally:
        engine.dispose()


def _setup_logging(loglevel: Any = None, logfile: str | None = None, **_kwargs: Any) -> None:
    # Instead of Celery's own setup: the one every cancelflow process shares (text or JSON).
    settings = load_settings()
    configure_logging(settings, celery_log_level(loglevel, settings), logfile)


def _outlive_broker_outages(**_kwargs: Any) -> None:
    # kombu 5.7.0 + Celery 5.7.0 stop the worker when Redis goes away (worker/broker_outage.py).
    from worker import broker_outage

    broker_outage.install()


def _reuse_broker_clients(**_kwargs: Any) -> None:
    # kombu 5.7.0 builds a Redis client for every publish and ack (worker/broker_client_reuse.py).
    from worker import broker_client_reuse

    broker_client_reuse.install()


def _log_configuration(**_kwargs: Any) -> None:
    from worker.bootstrap import log_configuration

    log_configuration(load_settings(), "worker")


signals.setup_logging.connect(_setup_logging, weak=False)
signals.celeryd_after_setup.connect(_log_configuration, weak=False)
signals.worker_init.connect(_migrate, weak=False)
signals.worker_init.connect(_outlive_broker_outages, weak=False)
signals.worker_init.connect(_reuse_broker_clients, weak=False)
signals.beat_init.connect(_migrate, weak=False)
