"""The read side's use cases: jobs as the API, the CLI, the dashboard and ``/metrics`` show them.

They read through a ``ReadSide`` (the port in ``read_side``), which the composition root builds
from the ledger's engine (``worker.ledger.views.LedgerReads``).
"""

from worker.services.views.filters import job_filter
from worker.services.views.jobs import (
    JOB_EVENTS,
    JOB_LEGS,
    LEGS_PAGE_MAX,
    LISTED_LEGS,
    check_jobs_cursor,
    event_view,
    get_job,
    get_legs,
    iter_legs,
    job_view,
    leg_view,
    list_jobs,
    stream_jobs,
)
from worker.services.views.models import Job, JobDetail, JobList, Leg, LegPage
from worker.services.views.read_side import JobFilter, LedgerUnavailable, ReadSide

__all__ = [
    "JOB_EVENTS",
    "JOB_LEGS",
    "LEGS_PAGE_MAX",
    "LISTED_LEGS",
    "Job",
    "JobDetail",
    "JobFilter",
    "JobList",
    "LedgerUnavailable",
    "Leg",
    "LegPage",
    "ReadSide",
    "check_jobs_cursor",
    "event_view",
    "get_job",
    "get_legs",
    "iter_legs",
    "job_filter",
    "job_view",
    "leg_view",
    "list_jobs",
    "stream_jobs",
]
