"""A throwaway PostgreSQL server for the tests and local runs: a temporary data directory on a
free port, started with the server found on this machine (Debian's postgresql package)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from devstack.embedded_redis import free_port

USER = "cancelflow"


class PostgresUnavailable(RuntimeError):
    pass


def server_bin_dir() -> Path:
    """Where initdb and pg_ctl live: on PATH, else Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    raise PostgresUnavailable(
        "no PostgreSQL server found (install Debian's postgresql package, or put initdb and "
        "pg_ctl on PATH)"
    )


def _as_server_user(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: run it as the postgres account the package creates.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@dataclass
class TemporaryPostgres:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cancelflow-pg-")))
    port: int = 0

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> TemporaryPostgres:
        bin_dir = server_bin_dir()
        self.port = self.port or free_port()
        data, sockets = self.root / "data", self.root / "sockets"
        sockets.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(sockets, "postgres")
        self._run([str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "--auth=trust",
                   "-E", "UTF8", "--no-sync"])
        # Durability settings off: a test server's data is thrown away with it.
        options = (f"-p {self.port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options,
                   "-l", str(self.root / "server.log"), "-w", "-t", "60", "start"])
        return self

    def _run(self, argv: list[str]) -> None:
        result = subprocess.run(_as_server_user(argv), capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            raise PostgresUnavailable(f"{argv[0]} failed: {result.stderr.strip()[-500:]}")

    def create_database(self, name: str, template: str | None = None) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres",
                             autocommit=True) as conn:
            clause = f" TEMPLATE {template}" if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{clause}')  # names are ours, never input
        return self.url(name)

    def stop(self) -> None:
        data = self.root / "data"
        if data.exists():
            bin_dir = server_bin_dir()
            subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m",
                                            "immediate", "-w", "stop"]),
                           capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
