"""``python -m bench``: run the benchmark parts, print their tables, save JSON results.

Parts: ``latency`` (jobs per second at 100 ms provider latency against a plain Celery task and
a bare client), ``sixdot50`` (jobs per second), ``callbacks`` (Paywall callback ingest against a
bare parser), ``bambora`` (5,000 legs against a bare-httpx ceiling, worker memory), ``reads`` (the
status API, dashboard and metrics over a 10,000-leg job and 500 more). Each is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import (
    bambora_legs,
    bounded_reads,
    callback_ingest,
    latency_jobs,
    paywall_growth,
    sixdot50_jobs,
)

PARTS: dict[str, Callable[[], dict[str, Any]]] = {
    "sixdot50": lambda: sixdot50_jobs.run(),
    "callbacks": lambda: callback_ingest.run(150, rounds=5),
    "bambora": lambda: bambora_legs.run(),
    "paywall-growth": lambda: paywall_growth.run(),
    "latency": lambda: latency_jobs.run(),
    "reads": lambda: bounded_reads.run(),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", choices=sorted(PARTS), action="append",
                        help="run only this part (repeatable)")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for name in args.only or list(PARTS):
        results[name] = PARTS[name]()
        print()
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bench-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
