"""``python -m chaos [--size N]``: the fault run at full size; prints its figures."""

from __future__ import annotations

import argparse
import sys

from chaos.scenario import ChaosFailure, run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos")
    parser.add_argument("--size", type=int, default=40, help="jobs per provider")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    try:
        figures = run(args.size, seed=args.seed)
    except ChaosFailure as exc:
        print(f"chaos: FAILED: {exc}", file=sys.stderr)
        return 1
    width = max(len(name) for name, _ in figures.rows())
    print(f"chaos run: {args.size} jobs per provider, seed {args.seed}")
    for name, value in figures.rows():
        print(f"  {name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
