"""The fault run: real processes broken while jobs of every provider are in flight.

While a storm of provider faults (5xx, 429 with Retry-After, timeouts after the request was
taken, connection resets, garbled bodies) hits about 30% of calls, the run SIGKILLs the worker's
process group (several times), stops and restarts Redis (append-only file on), SIGKILLs the
receiver mid-ingest, publishes some producer messages twice under other task ids, and runs two
beats. Then it waits for every job to end and checks, item by item, that nothing was lost or done
twice. Loopback only; bounded in time; it stops everything it started.
"""

from __future__ import annotations

import random
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import func, select

from devstack.sandbox_control import SandboxControl
from devstack.stack import Stack
from devstack.waiting import Timeout, wait_until
from worker.celery_app import create_celery
from worker.ledger import create_ledger_engine
from worker.ledger.tables import callback_pages, jobs, legs
from worker.producer import publish

FINAL_JOBS = ("reconciled", "mismatch", "failed", "invalid")
# Seven kinds of trouble at about 5% each: about 30% of provider calls go wrong.
STORM = [
    {"action": "status", "status": 503},
    {"action": "status", "status": 500},
    {"action": "status", "status": 429, "headers": {"Retry-After": "1"}},
    {"action": "timeout", "delay_ms": 1500, "effect": True},
    {"action": "timeout", "delay_ms": 1500, "effect": False},
    {"action": "reset", "effect": False},
    {"action": "malformed", "effect": True},
]


class ChaosFailure(AssertionError):
    """Something was lost or done twice: the message names the items."""


@dataclass
class Figures:
    jobs_submitted: int = 0
    messages_published: int = 0
    duplicate_messages: int = 0
    jobs_final: int = 0
    jobs_by_state: dict[str, int] = field(default_factory=dict)
    legs_by_state: dict[str, int] = field(default_factory=dict)
    legs_cancelled: int = 0
    effective_cancellations: int = 0
    duplicates_suppressed: int = 0
    pages_acknowledged: int = 0
    pages_stored: int = 0
    faults_applied: int = 0
    provider_calls: int = 0
    worker_kills: int = 0
    redis_restarts: int = 0
    receiver_kills: int = 0
    drain_seconds_after_last_fault: float = 0.0
    problems: list[str] = field(default_factory=list)

    def rows(self) -> list[tuple[str, str]]:
        return [(name, str(value)) for name, value in vars(self).items() if name != "problems"]


def _zone() -> str:
    from datetime import UTC, datetime

    offset = max(-12, min(14, 12 - datetime.now(UTC).hour))
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


def run(size: int = 12, *, seed: int = 7, run_dir: Path | None = None,
        drain_timeout: float = 240) -> Figures:
    """``size`` jobs per provider; raises ChaosFailure with the item ids if anything is off."""
    rng = random.Random(seed)
    zone = _zone()
    stack = Stack.prepare(run_dir or Path(tempfile.mkdtemp(prefix="cancelflow-chaos-")),
                          extra_env={
                              "CANCELFLOW_HTTP_TIMEOUT_SECONDS": "1",
                              "CANCELFLOW_RETRY_BASE_SECONDS": "0.2",
                              "CANCELFLOW_RETRY_MAX_SECONDS": "2",
                              "CANCELFLOW_RETRY_MAX_ATTEMPTS": "12",
                              "CANCELFLOW_SWEEP_INTERVAL_SECONDS": "1",
                              "CANCELFLOW_CALLBACK_TIMEOUT_SECONDS": "4",
                              "CANCELFLOW_PAYWALL_TIMEZONE": zone,
                          })
    figures = Figures()
    try:
        stack.start_sandbox()
        stack.start_receiver()
        stack.start_worker()
        stack.start_beat("beat-1")
        stack.start_beat("beat-2")
        sandbox = SandboxControl(stack.sandbox_url)
        requests = _seed(sandbox, stack, size, zone)
        for number, provider in enumerate(("sixdot50", "paywall", "bambora")):
            for index, fault in enumerate(STORM):
                sandbox.add_fault(provider=provider, operation="*", probability=0.05,
                                  times=0, seed=seed * 100 + number * 10 + index, **fault)
        producer = create_celery(stack.settings())
        for request in requests:
            publish(producer, request)
            figures.messages_published += 1
            if rng.random() < 0.3:  # the same message again, under another task id
                publish(producer, request)
                figures.messages_published += 1
                figures.duplicate_messages += 1
        figures.jobs_submitted = len(requests)
        last_fault = _break_things(stack, producer, figures, rng)
        producer.close()
        engine = create_ledger_engine(stack.settings().database_url)
        try:
            _drain(engine, len(requests), drain_timeout, stack.settings().redis_url)
            figures.drain_seconds_after_last_fault = round(time.monotonic() - last_fault, 1)
            _check(engine, sandbox, stack, figures)
        finally:
            engine.dispose()
            sandbox.close()
    finally:
        stack.stop_all()
    if figures.problems:
        raise ChaosFailure("; ".join(figures.problems[:20]))
    return figures


def _seed(sandbox: SandboxControl, stack: Stack, size: int, zone: str) -> list[dict[str, Any]]:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    today = datetime.now(ZoneInfo(zone)).date().isoformat()
    sandbox.settings(paywall={"timezone": zone,
                              "callback_url": f"{stack.receiver_url}/callbacks/paywall"})
    tag = uuid.uuid4().hex[:6]
    requests: list[dict[str, Any]] = []
    for n in range(size):
        batch = sandbox.seed_batch(count=4, amount_each="25.00")["id"]
        requests.append({"idempotency_key": f"chaos-{tag}-6d-{n}",
                         "legs": [{"provider": "sixdot50", "batch_id": batch}]})
    merchant = f"C{tag}"
    sandbox.seed_payments(merchant=merchant, count=size * 5, prefix="p-")
    for n in range(size):
        requests.append({"idempotency_key": f"chaos-{tag}-bb-{n}", "legs": [
            {"provider": "bambora", "merchant": merchant, "payment_reference": f"p-{5 * n + i}"}
            for i in range(1, 6)]})
    for n in range(size):
        code = f"chaos-{tag}-{n}"
        sandbox.seed_bulk(code=code, date=today, count=1200, amount_each="5.00",
                          duplicate_pages=[1] if n % 2 else [], order="reverse" if n % 3 else
                          "in_order")
        requests.append({"idempotency_key": f"chaos-{tag}-pw-{n}", "legs": [
            {"provider": "paywall", "scope": "bulk", "merchant_unique_code": code,
             "payment_date": today}]})
    return requests


def _break_things(stack: Stack, producer: Any, figures: Figures, rng: random.Random) -> float:
    """Kill and restart processes at random moments; when the last fault happened."""
    actions = ["worker", "redis", "worker", "receiver", "worker"]
    for action in actions:
        time.sleep(rng.uniform(0.5, 2.0))  # a random moment in the run, not a wait for state
        if action == "worker":
            stack.kill("worker")
            figures.worker_kills += 1
            stack.start_worker()
        elif action == "redis":
            assert stack.redis is not None, "the chaos run starts its own Redis"
            stack.redis.restart()
            figures.redis_restarts += 1
        else:
            stack.kill("receiver")
            figures.receiver_kills += 1
            stack.start_receiver()
    return time.monotonic()


def _drain(engine: Any, expected: int, timeout: float, redis_url: str) -> None:
    def all_final() -> bool:
        with engine.connect() as conn:
            done = conn.execute(select(func.count()).select_from(jobs).where(
                jobs.c.state.in_(FINAL_JOBS))).scalar_one()
        return bool(done == expected)

    try:
        wait_until(all_final, timeout=timeout, what=f"{expected} jobs to end", interval=0.5)
    except Timeout as exc:
        raise ChaosFailure(f"{exc}; {_where_they_are(engine, redis_url)}") from exc


def _where_they_are(engine: Any, redis_url: str) -> str:
    """What a drain that timed out leaves: jobs by state in the ledger, and the broker's queues,
    messages delivered but not acknowledged, and kombu's restore lock."""
    with engine.connect() as conn:
        states = dict(Counter(conn.execute(select(jobs.c.state)).scalars()))
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        queues = {name.decode(): client.llen(name) for name in client.scan_iter(count=1000)
                  if client.type(name) == b"list"}
        return (f"ledger jobs by state {states}; queues {queues}; unacked "
                f"{client.hlen('unacked')}; restore lock ttl {client.ttl('unacked_mutex')} s")
    finally:
        client.close()


def _check(engine: Any, sandbox: SandboxControl, stack: Stack, figures: Figures) -> None:
    with engine.connect() as conn:
        figures.jobs_by_state = dict(Counter(conn.execute(select(jobs.c.state)).scalars()))
        figures.jobs_final = sum(figures.jobs_by_state.get(s, 0) for s in FINAL_JOBS)
        leg_rows = conn.execute(select(legs.c.id, legs.c.provider, legs.c.target,
                                       legs.c.state, legs.c.reason)).all()
        stored = {(row[0], row[1]) for row in conn.execute(
            select(callback_pages.c.bulk_payment_id, callback_pages.c.page_number))}
    figures.legs_by_state = dict(Counter(row[3] for row in leg_rows))
    figures.pages_stored = len(stored)
    if sum(figures.jobs_by_state.values()) != figures.jobs_submitted:
        figures.problems.append(
            f"{sum(figures.jobs_by_state.values())} jobs in the ledger for "
            f"{figures.jobs_submitted} distinct requests")
    effects = sandbox.effects()
    bulk_payments: dict[str, list[int]] = {}
    for key, count in effects.items():
        _provider, operation, target = key.split(":", 2)
        if operation == "cancel_payment" and target.startswith("chaos-"):
            bulk_payments.setdefault(target.rsplit("-", 1)[0], []).append(count)
    for leg_id, provider, target, state, reason in leg_rows:
        if provider == "sixdot50":
            done = effects.get(f"sixdot50:cancel_batch:{target['batch_id']}", 0)
        elif provider == "bambora":
            done = effects.get(
                f"bambora:cancel_payment:{target['merchant']}/{target['payment_reference']}", 0)
        else:
            counts = bulk_payments.get(target["merchant_unique_code"], [])
            done = 1 if counts and set(counts) == {1} and len(counts) == 1200 else (
                0 if not counts else -1)
        if state == "cancelled":
            figures.legs_cancelled += 1
        if done == 1:
            figures.effective_cancellations += 1
        if done not in (0, 1) or (state == "cancelled") != (done == 1):
            figures.problems.append(f"leg {leg_id} ({provider}) is {state}/{reason} but the "
                                    f"provider shows {done} effective cancellations")
    deliveries = httpx.get(f"{stack.sandbox_url}/_sandbox/paywall/deliveries", timeout=10).json()
    acknowledged = {(str(d["bulk_payment_id"]), int(d["page"]))
                    for d in deliveries["deliveries"] if str(d["status"]).startswith("2")}
    figures.pages_acknowledged = len(acknowledged)
    for missing in sorted(acknowledged - stored):
        figures.problems.append(f"page {missing} was acknowledged but is not in the ledger")
    calls = sandbox.calls()
    figures.provider_calls = len(calls)
    figures.faults_applied = sum(1 for call in calls if call.get("fault"))
    figures.duplicates_suppressed = figures.duplicate_messages + sum(
        1 for d in deliveries["deliveries"] if str(d["status"]).startswith("2")
    ) - figures.pages_acknowledged
