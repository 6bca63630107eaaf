"""Payment results ingested per second through POST /callbacks/paywall, against a bare parser.

Both endpoints run under gunicorn with the same workers, take the same 1,000-payment pages from
the same client, in the same run; the ratio is what the durable path (verify, parse, commit the
raw body and the parsed payments, enqueue) costs against only parsing. A third endpoint, the
receiver committing with SQLite's synchronous=NORMAL instead of FULL (on a ledger of its own),
shows what making each acknowledged page survive a power loss costs.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench.measure import run_concurrently, table
from devstack.embedded_redis import EmbeddedRedis, free_port
from devstack.waiting import wait_until
from worker.providers.paywall.callbacks import expected_hash

KEY = "bench-key"
PAGE = 1000


PAGES_PER_BULK = 20


def pages(count: int, offset: int) -> list[bytes]:
    """``count`` pages of bulks of 20,000 payments (20 pages each), as Paywall would send."""
    bodies = []
    for n in range(count):
        bulk_id, number = offset + n // PAGES_PER_BULK, n % PAGES_PER_BULK + 1
        payments = [{"MerchantUniqueCode": f"b{bulk_id}-p{number}-{i}",
                     "PaymentId": (bulk_id * PAGES_PER_BULK + number) * PAGE + i,
                     "Amount": 10.25, "Status": 4, "Scope": "cancel", "ErrorCode": 0,
                     "ErrorMessage": None} for i in range(PAGE)]
        bodies.append(json.dumps({
            "Type": "BulkCancel", "BulkPaymentId": bulk_id, "MerchantUniqueCode": f"b{bulk_id}",
            "Hash": expected_hash(KEY.encode(), str(bulk_id), f"b{bulk_id}"),
            "IsCompressed": False, "PageNumber": number, "TotalPages": PAGES_PER_BULK,
            "HasMorePages": number < PAGES_PER_BULK, "Payments": payments}).encode())
    return bodies


def _gunicorn(app: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--log-level", "warning", app],
        env=env, stdout=handle, stderr=subprocess.STDOUT)
    handle.close()
    wait_until(lambda: httpx.post(f"http://127.0.0.1:{port}/callbacks/paywall",
                                  content=b"{}").status_code < 500,
               timeout=30, what=f"gunicorn {app}")
    return proc


def _send_all(url: str, bodies: list[bytes], concurrency: int) -> float:
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:
        def post(body: bytes) -> None:
            answer = client.post(url, content=body,
                                 headers={"Content-Type": "application/json"})
            if answer.status_code != 200:
                raise RuntimeError(f"{url} answered {answer.status_code}: {answer.text[:200]}")

        return run_concurrently(bodies, post, concurrency)


def run(page_count: int = 200, concurrency: int = 4, rounds: int = 3) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="cancelflow-bench-cb-"))
    redis = EmbeddedRedis(folder / "redis").start()
    env = {
        **dict(__import__("os").environ),
        "CANCELFLOW_REDIS_URL": redis.url,
        "CANCELFLOW_DATABASE_URL": f"sqlite:///{folder / 'ledger.db'}",
        "CANCELFLOW_PAYWALL_HASH_KEYS": KEY,
    }
    normal_env = {**env, "CANCELFLOW_DATABASE_URL": f"sqlite:///{folder / 'normal.db'}"}
    ports = {"bare": free_port(), "durable": free_port(), "normal": free_port()}
    procs = [
        _gunicorn("bench.bare_app:create_app()", ports["bare"], env, folder / "bare.log"),
        _gunicorn("webhooks:create_app()", ports["durable"], env, folder / "receiver.log"),
        _gunicorn("bench.receiver_normal:create_app()", ports["normal"], normal_env,
                  folder / "normal.log"),
    ]
    urls = {name: f"http://127.0.0.1:{port}/callbacks/paywall" for name, port in ports.items()}
    try:
        warm = pages(20, 10_000_000)
        for url in urls.values():
            _send_all(url, warm, concurrency)
        # Interleaved rounds, medians kept: a noisy moment hits every side, not one.
        times: dict[str, list[float]] = {name: [] for name in urls}
        for n in range(rounds):
            bodies = pages(page_count, n * 1000)  # new bulks each round: no duplicates
            for name, url in urls.items():
                times[name].append(_send_all(url, bodies, concurrency))
        bare_times, durable_times, normal_times = times["bare"], times["durable"], times["normal"]
        bare, durable = statistics.median(bare_times), statistics.median(durable_times)
        normal = statistics.median(normal_times)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(20)
        redis.stop()
    result = {
        "rounds": rounds,
        "pages_per_round": page_count,
        "payments_per_page": PAGE,
        "page_kib": round(len(bodies[0]) / 1024, 1),
        "bare_pages_per_second": round(page_count / bare, 1),
        "durable_pages_per_second": round(page_count / durable, 1),
        "bare_payments_per_second": round(page_count * PAGE / bare),
        "durable_payments_per_second": round(page_count * PAGE / durable),
        "ratio_durable_to_bare": round(bare / durable, 3),
        "ratios_per_round": [round(b / d, 3) for b, d in zip(bare_times, durable_times,
                                                             strict=True)],
        "normal_sync_pages_per_second": round(page_count / normal, 1),
        "ratio_full_to_normal_sync": round(normal / durable, 3),
        "full_to_normal_ratios_per_round": [
            round(m / d, 3) for m, d in zip(normal_times, durable_times, strict=True)],
    }
    table("Paywall callbacks through gunicorn (2 workers each), 1,000-payment pages, "
          f"{concurrency} concurrent senders, median of {rounds} interleaved rounds",
          [(k, str(v)) for k, v in result.items()])
    return result
