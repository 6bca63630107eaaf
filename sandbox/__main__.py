"""`python -m sandbox [--host 127.0.0.1] [--port 9000]`: serve until SIGTERM or SIGINT.

Served by gunicorn's threaded worker with keep-alive connections, as real providers keep them
(`sandbox.serve`). It prints `sandbox listening on URL` to stderr once listening.
"""

from __future__ import annotations

import argparse
import sys

from sandbox.serve import serve


def main(argv: list[str] | None = None) -> int:
    """Serve the sandbox in the foreground; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000, help="0 picks a free port")
    args = parser.parse_args(argv)
    serve(args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
