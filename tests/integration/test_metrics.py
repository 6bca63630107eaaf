"""``GET /metrics`` over a ledger seeded through the use cases, and the callback counters."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import Engine

from tests.conftest import FakeDispatcher
from webhooks import create_app
from worker.devstack.stack import SANDBOX_PAYWALL_HASH_KEY, Stack
from worker.domain.outcomes import AwaitingCallbacks, Cancelled, Outcome, Rejected
from worker.domain.reconciliation import Figures, LegEvidence, Reported, Source
from worker.domain.states import Provider, Reason
from worker.providers.calls import CallObserver, CallRecord
from worker.providers.paywall.callbacks import expected_hash
from worker.services.context import Context, RetryPolicy
from worker.services.legs import process_leg
from worker.services.submit import submit
from worker.services.views import get_job
from worker.settings import Settings

TOKEN = "metrics-token-0123456789abcdef-0123"
HASH_KEY = "cb-key"
# Jobs are accepted an hour before the scrape, so the oldest waiting job's age is known.
ACCEPTED_AT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
EVIDENCE = LegEvidence(
    Source.SIXDOT50_SUMMARY, "ZAR", Figures(2, Decimal("200.00")),
    Reported(cancelled_count=2, cancelled_amount=Decimal("200.00")),
)


@dataclass
class TimedDriver:
    """Answers every cancel with ``outcome``; each call is recorded with a scripted latency."""

    provider: Provider
    cancel_operation: str
    outcome: Outcome
    cancel_ms: float
    read_ms: float = 3.0
    read_operation: str = "get_batch"
    calls: list[str] = field(default_factory=list)

    def _observe(self, calls: CallObserver, operation: str, latency_ms: float) -> None:
        handle = calls.before(operation)
        calls.after(handle, CallRecord(self.provider.value, operation, 200, "ok", latency_ms))

    def cancel(self, target: dict[str, str], calls: CallObserver,
               on_cutoff: str = "reject") -> Outcome:
        self._observe(calls, self.cancel_operation, self.cancel_ms)
        return self.outcome

    def resolve(self, target: dict[str, str], calls: CallObserver,
                on_cutoff: str = "reject") -> Outcome:
        raise AssertionError("no ambiguous answers in this script")

    def read_evidence(self, target: dict[str, str], calls: CallObserver) -> LegEvidence | None:
        self._observe(calls, self.read_operation, self.read_ms)
        return EVIDENCE


@dataclass
class PageRecorder:
    pages: list[tuple[str, str]] = field(default_factory=list)

    def page_arrived(self, bulk_payment_id: str, code: str) -> None:
        self.pages.append((bulk_payment_id, code))


def run_job(engine: Engine, request: dict[str, Any], driver: TimedDriver | None) -> str:
    """Submit ``request`` and, given a driver, run its one leg a single round."""
    dispatcher = FakeDispatcher()
    ctx = Context(engine, {driver.provider: driver} if driver else {}, dispatcher,
                  RetryPolicy(2, 300, 8), 60, clock=lambda: ACCEPTED_AT, rng=lambda: 1.0)
    job_id = submit(ctx, (), {"request": request}).job_id
    if driver is not None:
        process_leg(ctx, dispatcher.legs[0][0])
    return job_id


def seed(engine: Engine) -> list[str]:
    """One job in each of six states, with provider calls of known latencies."""
    batch = {"provider": "sixdot50", "batch_id": "f945d71c-b00f-4e77-8175-253093157a2f"}
    six = {"legs": [batch]}
    return [
        run_job(engine, {**six, "idempotency_key": "mismatch",
                         "expect": {"count": 3, "amount": "300.00"}},
                TimedDriver(Provider.SIXDOT50, "cancel_batch", Cancelled(already=False), 30)),
        run_job(engine, {**six, "idempotency_key": "reconciled",
                         "expect": {"count": 2, "amount": "200.00"}},
                TimedDriver(Provider.SIXDOT50, "cancel_batch", Cancelled(already=False), 240)),
        run_job(engine, {"idempotency_key": "waiting", "legs": [
            {"provider": "paywall", "scope": "bulk", "merchant_unique_code": "secret-code-77",
             "payment_date": ACCEPTED_AT.date().isoformat()}]},
                TimedDriver(Provider.PAYWALL, "cancel_bulk", AwaitingCallbacks(reference="bulk-1"),
                            700)),
        run_job(engine, {"idempotency_key": "refused", "legs": [
            {"provider": "bambora", "merchant": "T1", "payment_reference": "ref-secret-1"}]},
                TimedDriver(Provider.BAMBORA, "cancel_payment",
                            Rejected(Reason.NOT_CANCELLABLE, "captured"), 12_000)),
        run_job(engine, {"idempotency_key": "queued", "legs": [
            {"provider": "bambora", "merchant": "T1", "payment_reference": "ref-secret-2"}]},
                None),
        run_job(engine, {"idempotency_key": "broken", "legs": [{"provider": "acme"}]}, None),
    ]


def scrape(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition, by name and labels."""
    samples: list[Sample] = [s for family in text_string_to_metric_families(text)
                             for s in family.samples]
    return {(s.name, frozenset(s.labels.items())): s.value for s in samples}


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def client(ledger_url: str) -> Iterator[FlaskClient]:
    """The receiver on the test's ledger; its engine is closed after the test."""
    settings = Settings(database_url=ledger_url, api_token=TOKEN,  # type: ignore[arg-type]
                        paywall_hash_keys=HASH_KEY)
    app = create_app(settings, dispatcher=PageRecorder())
    yield app.test_client()
    app.extensions["cancelflow"]["engine"].dispose()


def test_metrics_show_the_seeded_ledger(engine: Engine, client: FlaskClient) -> None:
    """Given jobs in six states, the scrape counts legs, jobs, mismatches, waiting age and calls."""
    seed(engine)

    answer = client.get("/metrics")

    assert answer.status_code == 200
    assert answer.content_type.startswith("text/plain")
    samples = scrape(answer.get_data(as_text=True))
    assert value(samples, "cancelflow_ledger_up") == 1
    legs = {(dict(labels)["provider"], dict(labels)["state"]): n
            for (name, labels), n in samples.items() if name == "cancelflow_legs" and n}
    assert legs == {("sixdot50", "cancelled"): 2, ("paywall", "awaiting_callbacks"): 1,
                    ("bambora", "rejected"): 1, ("bambora", "pending"): 1}
    assert value(samples, "cancelflow_legs", provider="paywall", state="refunded") == 0
    jobs = {dict(labels)["state"]: n for (name, labels), n in samples.items()
            if name == "cancelflow_jobs"}
    assert jobs == {"accepted": 1, "in_progress": 0, "awaiting_callbacks": 1, "reconciled": 1,
                    "mismatch": 1, "failed": 1, "invalid": 1}
    assert value(samples, "cancelflow_reconciliation_mismatches") == 1
    age = value(samples, "cancelflow_oldest_awaiting_callbacks_age_seconds")
    # The job was created an hour before this module was collected, however long ago that was.
    assert 3600 <= age <= (datetime.now(UTC) - ACCEPTED_AT).total_seconds()


def test_call_latency_histogram_buckets_the_attempt_rows(engine: Engine,
                                                         client: FlaskClient) -> None:
    """Each provider call lands in the cumulative buckets of its provider and operation."""
    seed(engine)
    samples = scrape(client.get("/metrics").get_data(as_text=True))
    name = "cancelflow_provider_call_duration_seconds"

    def buckets(provider: str, operation: str) -> dict[str, float]:
        return {dict(labels)["le"]: n for (sample, labels), n in samples.items()
                if sample == f"{name}_bucket" and dict(labels)["provider"] == provider
                and dict(labels)["operation"] == operation}

    cancels = buckets("sixdot50", "cancel_batch")  # 30 ms and 240 ms
    assert (cancels["0.025"], cancels["0.05"], cancels["0.25"], cancels["+Inf"]) == (0, 1, 2, 2)
    assert value(samples, f"{name}_sum", provider="sixdot50",
                 operation="cancel_batch") == pytest.approx(0.27)
    assert set(buckets("sixdot50", "get_batch").values()) == {2}  # two 3 ms summary reads
    waits = buckets("paywall", "cancel_bulk")  # 700 ms
    assert (waits["0.5"], waits["1.0"]) == (0, 1)
    slow = buckets("bambora", "cancel_payment")  # 12 s: beyond the last finite bucket
    assert (slow["10.0"], slow["+Inf"]) == (0, 1)
    assert value(samples, f"{name}_count", provider="bambora", operation="cancel_payment") == 1
    assert not buckets("bambora", "in_flight")  # intent rows without a latency are left out


def test_metrics_need_no_token_and_name_no_job_leg_or_target(engine: Engine,
                                                             client: FlaskClient) -> None:
    """The scrape is public, so it carries no ids and no targets, only bounded labels."""
    job_ids = seed(engine)
    leg_ids = [leg["id"] for job_id in job_ids for leg in get_job(engine, job_id)["legs"]]  # type: ignore[index]
    text = client.get("/metrics").get_data(as_text=True)
    for secret in [*job_ids, *leg_ids, "secret-code-77", "ref-secret-1", "f945d71c", TOKEN]:
        assert secret not in text
    labels = {label for _, found in scrape(text) for label, _ in found}
    assert labels <= {"outcome", "provider", "state", "operation", "le"}


def callback_page(bulk_payment_id: int, key: str = HASH_KEY, total_pages: int = 1,
                  ) -> dict[str, Any]:
    code = f"bulk-{bulk_payment_id}"
    return {"BulkPaymentId": bulk_payment_id, "MerchantUniqueCode": code, "PageNumber": 1,
            "TotalPages": total_pages,
            "Hash": expected_hash(key.encode(), str(bulk_payment_id), code),
            "Payments": [{"MerchantUniqueCode": "p1", "PaymentId": 1, "Amount": 12.5,
                          "Status": 4, "Scope": "cancel"}]}


def test_callbacks_are_counted_by_outcome(client: FlaskClient) -> None:
    """A stored page, its duplicate, a forged hash and garbage each count under their outcome."""
    before = scrape(client.get("/metrics").get_data(as_text=True))
    assert {value(before, "cancelflow_callbacks_received_total", outcome=o)
            for o in ("stored", "duplicate", "bad_hash", "malformed")} == {0}

    assert client.post("/callbacks/paywall", json=callback_page(5)).status_code == 200
    after_one = scrape(client.get("/metrics").get_data(as_text=True))
    assert value(after_one, "cancelflow_callbacks_received_total", outcome="stored") == 1

    client.post("/callbacks/paywall", json=callback_page(5))
    client.post("/callbacks/paywall", json=callback_page(6, key="forged"))
    client.post("/callbacks/paywall", data=b"not json", content_type="application/json")
    after = scrape(client.get("/metrics").get_data(as_text=True))
    assert {o: value(after, "cancelflow_callbacks_received_total", outcome=o)
            for o in ("stored", "duplicate", "bad_hash", "malformed")} == {
        "stored": 1, "duplicate": 1, "bad_hash": 1, "malformed": 1}


def test_gunicorn_workers_counts_are_summed(tmp_path: Path, redis_url: str) -> None:
    """Under gunicorn with two workers, every scrape shows the callbacks all workers stored."""
    stack = Stack.prepare(tmp_path, redis_url=redis_url)
    try:
        stack.start_receiver(workers=2)
        pages = 8
        for bulk in range(1, pages + 1):
            # Page 1 of 2: stored, but incomplete, so nothing is enqueued for a worker.
            page = callback_page(bulk, key=SANDBOX_PAYWALL_HASH_KEY, total_pages=2)
            answer = httpx.post(f"{stack.receiver_url}/callbacks/paywall", json=page)
            assert answer.status_code == 200
        for _ in range(4):
            text = httpx.get(f"{stack.receiver_url}/metrics").text
            assert value(scrape(text), "cancelflow_callbacks_received_total",
                         outcome="stored") == pages
    finally:
        stack.stop_all()
