"""`python -m sandbox [--host 127.0.0.1] [--port 9000]`: serve until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from sandbox.app import create_app, start_in_thread


def main(argv: list[str] | None = None) -> int:
    """Serve the sandbox in the foreground; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000, help="0 picks a free port")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Handlers first, so a signal arriving during startup still stops cleanly.
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        running = start_in_thread(create_app(), args.host, args.port)
    except OSError as error:
        print(f"sandbox: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    print(f"sandbox listening on {running.url}", file=sys.stderr, flush=True)
    # The main thread only waits, so signal handlers run promptly; serving is in a thread.
    stop.wait()
    running.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
