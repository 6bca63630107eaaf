"""Reads of a full ledger: a 10,000-leg job and 500 jobs of 20 legs, through the receiver.

Each read runs against a fresh receiver (gunicorn, one sync worker), first warmed on the same
route with a small job (imports, templates, statement caches), then run three times: the peak
resident memory above the warmed process's is what the read costs, and it should not depend on
the jobs' sizes. ``/metrics`` is also timed on the empty ledger, for a scrape whose cost does not
grow with the history. Last, what the metrics tallies cost the writers: a 2,000-leg job run
through the use cases with the tally triggers and without them (SQLite, and PostgreSQL when this
machine has one).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import Engine, text

from bench.measure import PeakMemory, table
from devstack.embedded_redis import free_port
from devstack.filled_ledger import fill_job
from devstack.postgres import PostgresUnavailable, TemporaryPostgres
from devstack.waiting import wait_until
from worker.ledger import create_ledger_engine, upgrade_ledger

TOKEN = "bench-bounded-reads-token-0123456789abcdef"
BIG_LEGS, SMALL_JOBS, SMALL_LEGS = 10_000, 500, 20
TRIGGERS = [(f"tally_{table}_{event}", table) for table in ("legs", "jobs", "attempts")
            for event in ("insert", "update", "update_old", "delete")]


def _receiver(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("ab") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
             "--timeout", "120", "--log-level", "warning", "webhooks:create_app()"],
            env=env, stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(f"{url}/healthz").status_code == 200, timeout=60,
               what="the receiver")
    return proc, url


def _tree_rss(pid: int) -> int:
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


def _measure(env: dict[str, str], log: Path, warm: str, path: str,
             rounds: int = 3) -> dict[str, Any]:
    """Peak RSS above the warmed receiver's, and the median time, of ``path``."""
    proc, url = _receiver(env, log)
    try:
        with httpx.Client(base_url=url, timeout=120,
                          headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            for _ in range(2):
                client.get(warm).raise_for_status()
            before = _tree_rss(proc.pid)
            times, size = [], 0
            with PeakMemory(proc.pid, interval=0.005) as memory:
                for _ in range(rounds):
                    started = time.perf_counter()
                    answer = client.get(path)
                    times.append(time.perf_counter() - started)
                    answer.raise_for_status()
                    size = len(answer.content)
        return {"peak_rss_delta_mb": round(max(0, memory.peak - before) / 2**20, 1),
                "median_ms": round(statistics.median(times) * 1000, 1),
                "answer_kib": round(size / 1024, 1)}
    finally:
        proc.terminate()
        proc.wait(30)


def _fill(engine: Engine) -> dict[str, str]:
    """The 10,000-leg job, then 500 jobs of 20 legs (newest); ids of the big and a small job."""
    big = fill_job(engine, "bench-big", BIG_LEGS)
    small = ""
    for n in range(SMALL_JOBS):
        small = fill_job(engine, f"bench-small-{n}", SMALL_LEGS)
    return {"big": big, "small": small}


def _write_cost(engine_for: Callable[[str], Engine], legs: int = 2_000,
                rounds: int = 4) -> dict[str, float]:
    """Seconds to run a ``legs``-leg job through the use cases, with the tally triggers and
    without them (dropped from a ledger of its own), interleaved rounds, medians; and the median
    of the rounds' differences per leg."""
    with_triggers, without = engine_for("with"), engine_for("without")
    with without.begin() as conn:
        for name, table_name in TRIGGERS:
            on = f" ON {table_name}" if without.dialect.name == "postgresql" else ""
            conn.execute(text(f"DROP TRIGGER IF EXISTS {name}{on}"))
    timings: dict[str, list[float]] = {"with": [], "without": []}
    try:
        for n in range(rounds):
            pair = [("without", without), ("with", with_triggers)]
            # Which goes first alternates: the second of a pair ran slower on a busy machine.
            for label, engine in pair if n % 2 == 0 else pair[::-1]:
                started = time.perf_counter()
                fill_job(engine, f"write-cost-{label}-{n}", legs)
                timings[label].append(time.perf_counter() - started)
    finally:
        with_triggers.dispose()
        without.dispose()
    on, off = statistics.median(timings["with"]), statistics.median(timings["without"])
    paired = statistics.median(a - b for a, b in zip(timings["with"], timings["without"],
                                                     strict=True))
    return {"with_triggers_s": round(on, 2), "without_triggers_s": round(off, 2),
            "overhead_us_per_leg": round(paired / legs * 1e6, 1),
            "overhead_ratio": round(on / off, 3)}


def _sqlite_engines(folder: Path) -> Callable[[str], Engine]:
    def engine_for(label: str) -> Engine:
        engine = create_ledger_engine(f"sqlite:///{folder / f'write-{label}.db'}")
        upgrade_ledger(engine)
        return engine

    return engine_for


def run() -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="cancelflow-bench-reads-"))
    ledger_url = f"sqlite:///{folder / 'ledger.db'}"
    env = {**os.environ, "CANCELFLOW_DATABASE_URL": ledger_url, "CANCELFLOW_API_TOKEN": TOKEN}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = folder / "receiver.log"
    engine = create_ledger_engine(ledger_url)
    upgrade_ledger(engine)
    empty_scrape = _measure(env, log, "/metrics", "/metrics", rounds=5)
    started = time.perf_counter()
    ids = _fill(engine)
    fill_seconds = time.perf_counter() - started
    engine.dispose()
    proc, url = _receiver(env, log)
    try:
        job = httpx.get(f"{url}/api/v1/jobs/{ids['big']}",
                        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120).json()
    finally:
        proc.terminate()
        proc.wait(30)
    big, small = ids["big"], ids["small"]
    reads = {
        "list, limit=500 (500 jobs of 20 legs)": ("/api/v1/jobs?limit=1", "/api/v1/jobs?limit=500"),
        "job detail, 10,000-leg job (1,000 listed)": (f"/api/v1/jobs/{small}",
                                                      f"/api/v1/jobs/{big}"),
        "legs page, 10,000-leg job (1,000 legs)": (
            f"/api/v1/jobs/{small}/legs",
            f"/api/v1/jobs/{big}/legs?cursor={job['legs_next_cursor']}"),
        "dashboard job page, 10,000-leg job": (f"/jobs/{small}", f"/jobs/{big}"),
        "dashboard jobs list": ("/?state=invalid", "/"),
        "/metrics, 20,000 legs and 20,000 calls recorded": ("/metrics", "/metrics"),
    }
    results: dict[str, Any] = {name: _measure(env, log, warm, path)
                               for name, (warm, path) in reads.items()}
    results["/metrics, empty ledger"] = empty_scrape
    write_cost = {"sqlite": _write_cost(_sqlite_engines(folder))}
    try:
        postgres = TemporaryPostgres().start()
    except PostgresUnavailable as exc:
        write_cost["postgresql"] = {"skipped": str(exc)}  # type: ignore[dict-item]
    else:
        try:
            def pg_engine(label: str) -> Engine:
                engine = create_ledger_engine(postgres.create_database(f"write_{label}"))
                upgrade_ledger(engine)
                return engine

            write_cost["postgresql"] = _write_cost(pg_engine)
        finally:
            postgres.stop()
    table(f"Bounded reads: a {BIG_LEGS:,}-leg job and {SMALL_JOBS} jobs of {SMALL_LEGS} legs "
          f"(filled in {fill_seconds:.0f} s), each read on a fresh receiver (gunicorn x1): "
          "peak RSS above the warmed process, median of 3",
          [(name, f"{r['peak_rss_delta_mb']} MB, {r['median_ms']} ms, {r['answer_kib']} KiB")
           for name, r in results.items()])
    table("Metrics tallies: a 2,000-leg job through the use cases, with and without the "
          "triggers (median of 4 interleaved rounds)",
          [(dialect, ", ".join(f"{k} {v}" for k, v in figures.items()))
           for dialect, figures in write_cost.items()])
    return {"reads": results, "fill_seconds": round(fill_seconds, 1), "write_cost": write_cost}
