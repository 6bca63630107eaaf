"""Jobs per second at real provider latency: cancelflow, a plain Celery task, a bare client.

``count`` one-payment Bambora jobs are published at once to workers already running, every
provider call taking ``latency_ms`` (the sandbox's latency setting), through:

- cancelflow with its default settings (ledger, reconciliation, retries, crash safety);
- a plain Celery task per cancellation making the same httpx call, no ledger
  (``bench.plain_app``: threads x32, late acks, prefetch 1, task events on, same broker);
- a bare httpx client with as many calls in flight as the plain task (32 threads, keep-alive).

Then 6DOT50 one-batch jobs, cancelflow against the plain task. Rounds are interleaved (a noisy
moment hits every side) and each round's ratios are kept; the medians are reported with the
spread. Also the CPU per job of each worker process and of the sandbox.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psutil
import redis
from celery import Celery
from sqlalchemy import func, select

from bench import plain_app
from bench.measure import cpu_seconds, run_concurrently, table
from devstack.sandbox_control import SandboxControl
from devstack.stack import Stack
from devstack.waiting import wait_until
from worker.celery_app import create_celery
from worker.domain.states import FINAL_JOB_STATES
from worker.ledger import create_ledger_engine
from worker.ledger.tables import jobs
from worker.producer import publish

FINAL = [state.value for state in FINAL_JOB_STATES]


class _Bench:
    """The running stack, its clients, and one timed run of each side."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        settings = stack.settings()
        self.sandbox = SandboxControl(stack.sandbox_url)
        self.producer = create_celery(settings)
        self.plain = Celery("bench-producer", broker=settings.redis_url)
        self.plain.conf.update(task_serializer="json", task_send_sent_event=True)
        self.engine = create_ledger_engine(settings.database_url)
        self.broker = redis.Redis.from_url(settings.redis_url)
        self.final_jobs = 0
        self.processes = {name: psutil.Process(stack.processes[name].pid)
                          for name in ("worker", "plain", "sandbox")}

    def timed(self, worker: str, count: int, start: Callable[[], None],
              done: Callable[[], bool]) -> tuple[float, float, float]:
        """(seconds, worker CPU ms a job, sandbox CPU ms a job) from the first publish to done."""
        cpu = {name: cpu_seconds(p) for name, p in self.processes.items()}
        started = time.perf_counter()
        start()
        wait_until(done, timeout=600, what=f"{count} jobs on {worker}", interval=0.01)
        seconds = time.perf_counter() - started
        return (seconds,
                (cpu_seconds(self.processes[worker]) - cpu[worker]) * 1000 / count,
                (cpu_seconds(self.processes["sandbox"]) - cpu["sandbox"]) * 1000 / count)

    def cancelflow(self, legs: list[dict[str, str]]) -> tuple[float, float, float]:
        """One job per leg, published at once, until every job is final."""
        self.final_jobs += len(legs)
        expected = self.final_jobs

        def start() -> None:
            for leg in legs:
                publish(self.producer, {"idempotency_key": f"bench-{uuid.uuid4()}",
                                        "legs": [leg]})

        def done() -> bool:
            self.stack.alive("worker")
            with self.engine.connect() as conn:
                final = conn.execute(select(func.count()).select_from(jobs).where(
                    jobs.c.state.in_(FINAL))).scalar_one()
            return bool(final >= expected)

        return self.timed("worker", len(legs), start, done)

    def plain_task(self, task: str, args: list[list[str]]) -> tuple[float, float, float]:
        """One plain task per cancellation, published at once, until each counted itself."""
        counter = f"bench:plain:{uuid.uuid4().hex}"

        def start() -> None:
            for arguments in args:
                self.plain.send_task(task, args=[*arguments, counter], queue=plain_app.QUEUE)

        def done() -> bool:
            return int(self.broker.get(counter) or 0) >= len(args)

        return self.timed("plain", len(args), start, done)

    def bare(self, merchant: str, references: list[str], concurrency: int) -> float:
        """Seconds for a bare httpx client to cancel them, ``concurrency`` calls in flight."""
        url = self.stack.sandbox_url
        token = httpx.post(f"{url}/bambora-auth/connect/token",
                           data={"grant_type": "client_credentials"},
                           auth=("sandbox-client", "sandbox-secret")).json()["access_token"]
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {token}",
                                               "API-Version": "1"},
                          limits=httpx.Limits(max_connections=concurrency)) as client:
            def cancel(reference: str) -> None:
                answer = client.post(f"{url}/bambora/v1/merchants/{merchant}/payments/"
                                     f"{quote(reference, safe='')}/cancel/")
                if answer.status_code != 201:
                    raise RuntimeError(f"bare cancel answered {answer.status_code}")

            return run_concurrently(references, cancel, concurrency)

    def payments(self, count: int) -> tuple[str, list[str]]:
        merchant = f"M{uuid.uuid4().hex[:8]}"
        self.sandbox.seed_payments(merchant=merchant, count=count, prefix="p-")
        return merchant, [f"p-{n}" for n in range(1, count + 1)]

    def batches(self, count: int) -> list[str]:
        return [self.sandbox.seed_batch(count=1, amount_each="10.00")["id"]
                for _ in range(count)]

    def close(self) -> None:
        self.producer.close()
        self.plain.close()
        self.engine.dispose()
        self.sandbox.close()


def _spread(values: list[float]) -> str:
    rounds = ", ".join(f"{v:.3f}" for v in values)
    return f"median {statistics.median(values):.3f} (rounds {rounds})"


def run(count: int = 400, latency_ms: int = 100, rounds: int = 3, sixdot50_count: int = 200,
        worker_concurrency: int | None = None) -> dict[str, Any]:
    """``rounds`` interleaved rounds of each side; medians, spreads, each round's ratios.

    ``worker_concurrency`` overrides cancelflow's default (to compare settings side by side).
    """
    stack = Stack.prepare(Path(tempfile.mkdtemp(prefix="cancelflow-bench-lat-")))
    seconds: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    sandbox_cpu: dict[str, list[float]] = {}

    def keep(side: str, measured: tuple[float, float, float]) -> None:
        seconds.setdefault(side, []).append(measured[0])
        cpu.setdefault(side, []).append(measured[1])
        sandbox_cpu.setdefault(side, []).append(measured[2])

    try:
        stack.start_sandbox()
        stack.start_worker(concurrency=worker_concurrency)
        stack.start_worker("plain", app="bench.plain_app")
        bench = _Bench(stack)
        bench.sandbox.settings(latency_ms=latency_ms)
        # Warm-up: tokens fetched, connections open, lazy imports done, on every side.
        merchant, refs = bench.payments(40)
        bench.bare(merchant, refs[:10], plain_app.CONCURRENCY)
        bench.plain_task(plain_app.BAMBORA_CANCEL, [[merchant, r] for r in refs[10:20]])
        bench.cancelflow([{"provider": "bambora", "merchant": merchant, "payment_reference": r}
                          for r in refs[20:]])
        bench.plain_task(plain_app.SIXDOT50_CANCEL, [[b] for b in bench.batches(10)])
        bench.cancelflow([{"provider": "sixdot50", "batch_id": b} for b in bench.batches(10)])
        for n in range(rounds):
            # The order turns each round, so no side always runs first.
            sides = ["bare", "plain", "cancelflow"]
            for side in sides[n % 3:] + sides[:n % 3]:
                merchant, refs = bench.payments(count)
                if side == "bare":
                    seconds.setdefault(side, []).append(
                        bench.bare(merchant, refs, plain_app.CONCURRENCY))
                elif side == "plain":
                    keep(side, bench.plain_task(plain_app.BAMBORA_CANCEL,
                                                [[merchant, r] for r in refs]))
                else:
                    keep(side, bench.cancelflow(
                        [{"provider": "bambora", "merchant": merchant, "payment_reference": r}
                         for r in refs]))
            for side in (["plain-6d", "cancelflow-6d"] if n % 2 == 0
                         else ["cancelflow-6d", "plain-6d"]):
                batches = bench.batches(sixdot50_count)
                if side == "plain-6d":
                    keep(side, bench.plain_task(plain_app.SIXDOT50_CANCEL, [[b] for b in batches]))
                else:
                    keep(side, bench.cancelflow([{"provider": "sixdot50", "batch_id": b}
                                                 for b in batches]))
        bench.close()
    finally:
        stack.stop_all()

    def ratios(side: str, base: str) -> list[float]:
        return [b / s for b, s in zip(seconds[base], seconds[side], strict=True)]

    def rate(side: str, n: int) -> float:
        return round(n / statistics.median(seconds[side]), 1)

    result: dict[str, Any] = {
        "bambora_cancelflow_vs_plain": _spread(ratios("cancelflow", "plain")),
        "bambora_cancelflow_vs_bare": _spread(ratios("cancelflow", "bare")),
        "bambora_plain_vs_bare": _spread(ratios("plain", "bare")),
        "sixdot50_cancelflow_vs_plain": _spread(ratios("cancelflow-6d", "plain-6d")),
        "bambora_jobs_per_second": {s: rate(s, count) for s in ("cancelflow", "plain", "bare")},
        "sixdot50_jobs_per_second": {s: rate(s, sixdot50_count)
                                     for s in ("cancelflow-6d", "plain-6d")},
        "worker_cpu_ms_per_job": {s: round(statistics.median(v), 2) for s, v in cpu.items()},
        "sandbox_cpu_ms_per_job": {s: round(statistics.median(v), 2)
                                   for s, v in sandbox_cpu.items()},
        "seconds_by_round": {s: [round(v, 3) for v in vs] for s, vs in seconds.items()},
        "jobs_per_round": {"bambora": count, "sixdot50": sixdot50_count},
        "rounds": rounds,
        "latency_ms": latency_ms,
        "cancelflow_worker_concurrency": worker_concurrency or "default",
    }
    table(f"One-payment jobs at {latency_ms} ms provider latency, published at once: cancelflow "
          f"(default settings) vs a plain Celery task (threads x{plain_app.CONCURRENCY}) vs a "
          f"bare client ({plain_app.CONCURRENCY} in flight), {rounds} interleaved rounds",
          [(k, str(v)) for k, v in result.items()])
    return result
