"""``GET /metrics`` over a ledger seeded through the use cases, and the callback counters."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from devstack.stack import SANDBOX_PAYWALL_HASH_KEY, Stack
from tests.support import SEEDED_AT, job_answer, metric_value, scrape, seed_six_states
from webhooks import create_app
from worker.ledger.views import LedgerReads
from worker.providers.paywall.callbacks import expected_hash
from worker.settings import Settings

TOKEN = "metrics-token-0123456789abcdef-0123"
HASH_KEY = "cb-key"
@dataclass
class PageRecorder:
    pages: list[tuple[str, str]] = field(default_factory=list)

    def page_arrived(self, bulk_payment_id: str, code: str) -> None:
        self.pages.append((bulk_payment_id, code))


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
    seed_six_states(engine)

    answer = client.get("/metrics")

    assert answer.status_code == 200
    assert answer.content_type.startswith("text/plain")
    samples = scrape(answer.get_data(as_text=True))
    assert metric_value(samples, "cancelflow_ledger_up") == 1
    legs = {(dict(labels)["provider"], dict(labels)["state"]): n
            for (name, labels), n in samples.items() if name == "cancelflow_legs" and n}
    assert legs == {("sixdot50", "cancelled"): 2, ("paywall", "awaiting_callbacks"): 1,
                    ("bambora", "rejected"): 1, ("bambora", "pending"): 1}
    assert metric_value(samples, "cancelflow_legs", provider="paywall", state="refunded") == 0
    jobs = {dict(labels)["state"]: n for (name, labels), n in samples.items()
            if name == "cancelflow_jobs"}
    assert jobs == {"accepted": 1, "in_progress": 0, "awaiting_callbacks": 1, "reconciled": 1,
                    "mismatch": 1, "failed": 1, "invalid": 1}
    assert metric_value(samples, "cancelflow_reconciliation_mismatches") == 1
    age = metric_value(samples, "cancelflow_oldest_awaiting_callbacks_age_seconds")
    # The job was created an hour before this module was collected, however long ago that was.
    assert 3600 <= age <= (datetime.now(UTC) - SEEDED_AT).total_seconds()


def test_call_latency_histogram_buckets_the_attempt_rows(engine: Engine,
                                                         client: FlaskClient) -> None:
    """Each provider call lands in the cumulative buckets of its provider and operation."""
    seed_six_states(engine)
    samples = scrape(client.get("/metrics").get_data(as_text=True))
    name = "cancelflow_provider_call_duration_seconds"

    def buckets(provider: str, operation: str) -> dict[str, float]:
        return {dict(labels)["le"]: n for (sample, labels), n in samples.items()
                if sample == f"{name}_bucket" and dict(labels)["provider"] == provider
                and dict(labels)["operation"] == operation}

    cancels = buckets("sixdot50", "cancel_batch")  # 30 ms and 240 ms
    assert (cancels["0.025"], cancels["0.05"], cancels["0.25"], cancels["+Inf"]) == (0, 1, 2, 2)
    assert metric_value(samples, f"{name}_sum", provider="sixdot50",
                 operation="cancel_batch") == pytest.approx(0.27)
    assert set(buckets("sixdot50", "get_batch").values()) == {2}  # two 3 ms summary reads
    waits = buckets("paywall", "cancel_bulk")  # 700 ms
    assert (waits["0.5"], waits["1.0"]) == (0, 1)
    slow = buckets("bambora", "cancel_payment")  # 12 s: beyond the last finite bucket
    assert (slow["10.0"], slow["+Inf"]) == (0, 1)
    assert metric_value(samples, f"{name}_count", provider="bambora",
                        operation="cancel_payment") == 1
    assert not buckets("bambora", "in_flight")  # intent rows without a latency are left out


def test_metrics_need_no_token_and_name_no_job_leg_or_target(engine: Engine,
                                                             client: FlaskClient) -> None:
    """The scrape is public, so it carries no ids and no targets, only bounded labels."""
    job_ids = seed_six_states(engine)
    reads = LedgerReads(engine)
    leg_ids = [leg["id"] for job_id in job_ids for leg in job_answer(reads, job_id)["legs"]]  # type: ignore[index]
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
    assert {metric_value(before, "cancelflow_callbacks_received_total", outcome=o)
            for o in ("stored", "duplicate", "bad_hash", "malformed")} == {0}

    assert client.post("/callbacks/paywall", json=callback_page(5)).status_code == 200
    after_one = scrape(client.get("/metrics").get_data(as_text=True))
    assert metric_value(after_one, "cancelflow_callbacks_received_total", outcome="stored") == 1

    client.post("/callbacks/paywall", json=callback_page(5))
    client.post("/callbacks/paywall", json=callback_page(6, key="forged"))
    client.post("/callbacks/paywall", data=b"not json", content_type="application/json")
    after = scrape(client.get("/metrics").get_data(as_text=True))
    assert {o: metric_value(after, "cancelflow_callbacks_received_total", outcome=o)
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
            assert metric_value(scrape(text), "cancelflow_callbacks_received_total",
                         outcome="stored") == pages
    finally:
        stack.stop_all()
