"""``GET /metrics``: Prometheus text, no token (it holds no secrets and no ids).

Two sources:

- What the receiver counts as it works: ``cancelflow_callbacks_received_total{outcome}``.
  Under gunicorn each worker process counts its own requests, so a plain registry would
  answer a scrape with the count of whichever worker took it. When ``PROMETHEUS_MULTIPROC_DIR``
  is set, prometheus_client's multiprocess mode is used instead: every worker writes its
  counts to files in that directory and a scrape sums them. The directory must exist, be
  private to this receiver (no other process using prometheus_client, such as Flower, may
  share it) and be emptied before gunicorn starts, or counts of a previous run are summed in
  too (``Stack.start_receiver`` does both). Counters only, so no gunicorn ``child_exit`` hook
  is needed. Without the variable (one process, tests) a plain registry per app is used.
- What the ledger says at scrape time, from its tally tables (legs by provider and state, jobs
  by state, provider calls by latency bucket), which triggers keep in the same transaction as
  the rows they count (migration 0003), plus the oldest job still waiting on callbacks (an index
  lookup). A scrape reads a few dozen rows whatever the ledger's history: it never aggregates
  ``legs``, ``jobs`` or ``attempts``. Every process answers these alike, from the shared ledger.
  On PostgreSQL the scrape first folds the tallies of finished database sessions into one row
  per key (``fold_tallies``), so the rows it reads stay as few as the live sessions.

No label carries a job id, leg id or target: their number is unbounded and they identify
customers' payments.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from webhooks.apidoc import Reply, operation
from worker.domain.states import JobState, LegState, Provider
from worker.services.views import LedgerUnavailable, ReadSide
from worker.services.views.metrics import LATENCY_BOUNDS_MS, CallTally, ledger_figures

log = logging.getLogger(__name__)

blueprint = Blueprint("metrics", __name__)

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
CALLBACK_OUTCOMES = ("stored", "duplicate", "bad_hash", "malformed")
# The ledger's tally buckets, in seconds; str() of these floats is the exposition's own
# spelling of "le" ("0.01", "1.0").
LATENCY_BUCKETS_SECONDS = tuple(bound / 1000 for bound in LATENCY_BOUNDS_MS)


@dataclass(frozen=True)
class ReceiverMetrics:
    """The scrape registry and the counters the receiver's views increment."""

    registry: CollectorRegistry
    callbacks: Counter


def create_metrics(
    reads: ReadSide, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> ReceiverMetrics:
    """Counters in multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set, else a plain
    registry of this app's own."""
    registry = CollectorRegistry()
    # prometheus_client chose file-backed values from this same variable when it was imported,
    # so the choice is read from the environment, never passed in.
    multiprocess_dir = os.environ.get(MULTIPROC_DIR_ENV)
    if multiprocess_dir:
        # The counter then belongs to no registry: the collector reads every worker's files.
        os.makedirs(multiprocess_dir, exist_ok=True)
        MultiProcessCollector(registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
        owner: CollectorRegistry | None = None
    else:
        owner = registry
    callbacks = Counter(
        "cancelflow_callbacks_received",
        "Paywall callbacks received, by outcome (stored, duplicate, bad_hash, malformed).",
        ["outcome"],
        registry=owner,
    )
    for outcome in CALLBACK_OUTCOMES:
        callbacks.labels(outcome=outcome)  # every outcome is shown, 0 until it happens
    registry.register(LedgerCollector(reads, clock))
    return ReceiverMetrics(registry, callbacks)


class LedgerCollector(Collector):
    """Gauges and the call latency histogram, read from the ledger on each scrape."""

    def __init__(self, reads: ReadSide, clock: Callable[[], datetime]) -> None:
        self._reads = reads
        self._clock = clock

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not query the ledger; the names never clash

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "cancelflow_ledger_up", "1 if the ledger answered this scrape's queries, else 0.")
        try:
            figures = ledger_figures(self._reads)
        except LedgerUnavailable as exc:
            # The receiver's own counters are still worth a scrape when the ledger is down.
            log.warning("metrics: ledger unavailable (%s)", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield _legs(figures.legs)
        yield from _jobs(figures.jobs, figures.oldest_awaiting_callbacks, self._clock())
        yield _latency(figures.calls)


def _legs(rows: list[tuple[str, str, int]]) -> Metric:
    counts = {(p.value, s.value): 0 for p in Provider for s in LegState}
    counts.update({(provider, state): n for provider, state, n in rows})
    family = GaugeMetricFamily(
        "cancelflow_legs", "Legs in the ledger, by provider and state.",
        labels=["provider", "state"])
    for (provider, state), n in sorted(counts.items()):
        family.add_metric([provider, state], n)
    return family


def _jobs(counted: dict[JobState, int], oldest: datetime | None,
          now: datetime) -> Iterable[Metric]:
    counts = {s.value: counted.get(s, 0) for s in JobState}
    by_state = GaugeMetricFamily("cancelflow_jobs", "Jobs in the ledger, by state.",
                                 labels=["state"])
    for state, n in sorted(counts.items()):
        by_state.add_metric([state], n)
    yield by_state
    yield GaugeMetricFamily(
        "cancelflow_reconciliation_mismatches",
        "Jobs whose legs are final but whose reconciliation found differences (state mismatch).",
        value=counts[JobState.MISMATCH.value])
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    yield GaugeMetricFamily(
        "cancelflow_oldest_awaiting_callbacks_age_seconds",
        "Seconds since the oldest job still awaiting_callbacks was accepted; 0 when none is.",
        value=age)


def _latency(tallies: list[CallTally]) -> Metric:
    family = HistogramMetricFamily(
        "cancelflow_provider_call_duration_seconds",
        "Provider call latency, by provider and operation, of the calls that finished with one.",
        labels=["provider", "operation"])
    for tally in sorted(tallies, key=lambda t: (t.provider, t.operation)):
        buckets = [(str(bound), float(n))
                   for bound, n in zip(LATENCY_BUCKETS_SECONDS, tally.under, strict=True)]
        buckets.append(("+Inf", float(tally.calls)))
        family.add_metric([tally.provider, tally.operation], buckets,
                          sum_value=tally.total_ms / 1000)
    return family


@operation(blueprint, "GET", "/metrics",
           summary="Prometheus text: callbacks by outcome, legs by provider and state, jobs by "
                   "state, provider call latency, reconciliation mismatches",
           replies={200: Reply("Prometheus text exposition format 1.0.0", None, ("text/plain",))})
def metrics() -> Response:
    built: ReceiverMetrics = current_app.extensions["cancelflow"]["metrics"]
    return Response(generate_latest(built.registry), content_type=CONTENT_TYPE_LATEST)
