"""``python -m bench``: run every benchmark part, print their tables, save JSON results."""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from bench import sixdot50_jobs


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--jobs", type=int, default=300, help="6DOT50 jobs to run")
    args = parser.parse_args()
    results = {
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sixdot50_jobs": sixdot50_jobs.run(args.jobs),
    }
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bench-{int(time.time())}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
