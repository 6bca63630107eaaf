"""Several machines' worth of processes on one PostgreSQL ledger and one broker: three workers
with their own node names, two receivers, two beats; a few hundred jobs of every provider."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from devstack.embedded_redis import free_port
from devstack.postgres import TemporaryPostgres
from devstack.sandbox_control import SandboxControl
from devstack.stack import Stack
from devstack.waiting import wait_until
from tests.support import fresh_postgres_url, midday_zone, today_in
from worker.celery_app import create_celery
from worker.ledger import create_ledger_engine
from worker.ledger.tables import jobs
from worker.producer import publish

pytestmark = pytest.mark.integration

ZONE = midday_zone()
SIXDOT50_JOBS, BAMBORA_JOBS, PAYWALL_JOBS = 100, 60, 60
FINAL = ("reconciled", "mismatch", "failed")


@pytest.fixture
def cluster(tmp_path: Path, redis_url: str, sandbox_url: str,
            postgres: TemporaryPostgres | None) -> Iterator[tuple[Stack, list[str]]]:
    stack = Stack.prepare(tmp_path, redis_url=redis_url, sandbox_url=sandbox_url,
                          database_url=fresh_postgres_url(postgres), extra_env={
                              "CANCELFLOW_SWEEP_INTERVAL_SECONDS": "1",
                              "CANCELFLOW_PAYWALL_TIMEZONE": ZONE,
                          })
    try:
        receivers = [stack.start_receiver(name="receiver-a"),
                     stack.start_receiver(name="receiver-b", port=free_port())]
        for name in ("worker-1", "worker-2", "worker-3"):
            stack.start_worker(name, concurrency=4)
        stack.start_beat("beat-1")
        stack.start_beat("beat-2")
        yield stack, receivers
    finally:
        stack.stop_all()


def test_every_job_ends_once_across_processes(cluster: tuple[Stack, list[str]],
                                              sandbox: SandboxControl) -> None:
    """220 jobs of all three providers (44 of them published twice) end reconciled; every target
    is cancelled once."""
    stack, receivers = cluster
    sandbox.settings(paywall={"timezone": ZONE})
    tag = uuid.uuid4().hex[:6]
    requests: list[dict[str, Any]] = []
    for _ in range(SIXDOT50_JOBS):
        batch = sandbox.seed_batch(count=3, amount_each="10.00")["id"]
        requests.append({"legs": [{"provider": "sixdot50", "batch_id": batch}]})
    merchant = f"M{tag}"
    sandbox.seed_payments(merchant=merchant, count=BAMBORA_JOBS * 3, prefix="p-")
    for n in range(BAMBORA_JOBS):
        requests.append({"legs": [
            {"provider": "bambora", "merchant": merchant, "payment_reference": f"p-{3 * n + i}"}
            for i in (1, 2, 3)]})
    for n in range(PAYWALL_JOBS):
        code = f"bulk-{tag}-{n}"
        # Half the bulks call back one receiver, half the other.
        sandbox.seed_bulk(code=code, count=5, amount_each="20.00", date=today_in(ZONE),
                          callback_url=f"{receivers[n % 2]}/callbacks/paywall")
        requests.append({"legs": [{"provider": "paywall", "scope": "bulk",
                                   "merchant_unique_code": code,
                                   "payment_date": today_in(ZONE)}]})
    producer = create_celery(stack.settings())
    job_ids = []
    for i, request in enumerate(requests):
        job_ids.append(publish(producer, {"idempotency_key": f"multi-{tag}-{i}", **request}))
        if i % 5 == 0:
            # A producer's retry right behind its first copy: often taken into the same group
            # commit as it (tasks/submit.py), sometimes by another worker; stored once either way.
            assert publish(producer, {"idempotency_key": f"multi-{tag}-{i}", **request}) == (
                job_ids[-1])
    producer.close()
    engine = create_ledger_engine(stack.settings().database_url)
    try:
        def all_final() -> bool:
            with engine.connect() as conn:
                done = conn.execute(select(func.count()).select_from(jobs).where(
                    jobs.c.state.in_(FINAL))).scalar_one()
            return done == len(set(job_ids))

        wait_until(all_final, timeout=180, what=f"{len(job_ids)} jobs to end", interval=0.5)
        with engine.connect() as conn:
            states = Counter(conn.execute(select(jobs.c.state)).scalars())
    finally:
        engine.dispose()
    assert states == {"reconciled": len(set(job_ids))} and len(set(job_ids)) == len(requests)
    effects = sandbox.effects()
    assert set(effects.values()) == {1}, {k: v for k, v in effects.items() if v != 1}
    cancels = Counter(key.split(":")[1] for key in effects)
    assert cancels["cancel_batch"] == SIXDOT50_JOBS
    assert cancels["cancel_payment"] >= BAMBORA_JOBS * 3 + PAYWALL_JOBS * 5
    assert cancels["cancel_bulk"] == PAYWALL_JOBS
    workers_used = {c for c in ("worker-1", "worker-2", "worker-3")
                    if "succeeded" in (stack.run_dir / f"{c}.log").read_text()}
    assert len(workers_used) == 3, "every worker took part"
