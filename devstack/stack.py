"""The local stack as real processes: Redis, sandbox, worker(s), beat, receiver, Flower."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devstack.embedded_redis import EmbeddedRedis, free_port
from devstack.waiting import wait_until
from worker.settings import Settings

SANDBOX_SIXDOT50 = {"key": "sandbox-key", "secret": "sandbox-secret"}
SANDBOX_PAYWALL_HASH_KEY = "sandbox-hash-key"


def stack_env(
    run_dir: Path, *, redis_url: str, sandbox_url: str, receiver_url: str, api_token: str
) -> dict[str, str]:
    """Settings pointing every provider at the sandbox (its default credentials)."""
    return {
        "CANCELFLOW_REDIS_URL": redis_url,
        "CANCELFLOW_DATABASE_URL": f"sqlite:///{run_dir / 'cancelflow.db'}",
        "CANCELFLOW_API_TOKEN": api_token,
        "CANCELFLOW_PUBLIC_URL": receiver_url,
        "CANCELFLOW_SIXDOT50_BASE_URL": f"{sandbox_url}/sixdot50",
        "CANCELFLOW_SIXDOT50_KEY": SANDBOX_SIXDOT50["key"],
        "CANCELFLOW_SIXDOT50_SECRET": SANDBOX_SIXDOT50["secret"],
        "CANCELFLOW_PAYWALL_BASE_URL": f"{sandbox_url}/paywall",
        "CANCELFLOW_PAYWALL_PRIVATE_BASE_URL": f"{sandbox_url}/paywall-private",
        "CANCELFLOW_PAYWALL_API_KEY_PUBLIC": "sandbox-public-key",
        "CANCELFLOW_PAYWALL_API_CLIENT_PUBLIC": "sandbox-public-client",
        "CANCELFLOW_PAYWALL_API_KEY_PRIVATE": "sandbox-private-key",
        "CANCELFLOW_PAYWALL_API_CLIENT_PRIVATE": "sandbox-private-client",
        "CANCELFLOW_PAYWALL_HASH_KEYS": SANDBOX_PAYWALL_HASH_KEY,
        "CANCELFLOW_BAMBORA_BASE_URL": f"{sandbox_url}/bambora",
        "CANCELFLOW_BAMBORA_AUTH_URL": f"{sandbox_url}/bambora-auth",
        "CANCELFLOW_BAMBORA_CLIENT_ID": "sandbox-client",
        "CANCELFLOW_BAMBORA_CLIENT_SECRET": "sandbox-secret",
    }


@dataclass
class Stack:
    """Starts and stops the processes; each in its own process group, logs in ``run_dir``."""

    run_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    redis: EmbeddedRedis | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    sandbox_port: int = 0
    receiver_port: int = 0
    flower_port: int = 0
    external_sandbox_url: str | None = None

    @classmethod
    def prepare(
        cls,
        run_dir: Path,
        *,
        sandbox_port: int = 0,
        receiver_port: int = 0,
        flower_port: int = 0,
        redis_url: str | None = None,
        sandbox_url: str | None = None,
        database_url: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> Stack:
        """Settings for a stack in ``run_dir``; Redis is started here unless a URL is given.

        ``sandbox_url`` points the providers at a sandbox someone else runs (a test's own).
        """
        run_dir.mkdir(parents=True, exist_ok=True)
        stack = cls(
            run_dir,
            sandbox_port=sandbox_port or free_port(),
            receiver_port=receiver_port or free_port(),
            flower_port=flower_port or free_port(),
        )
        if sandbox_url:
            stack.external_sandbox_url = sandbox_url
        redis_url = redis_url or os.environ.get("CANCELFLOW_REDIS_URL")
        if not redis_url:
            stack.redis = EmbeddedRedis(run_dir / "redis").start()
            redis_url = stack.redis.url
        stack.env = {
            **stack_env(
                run_dir,
                redis_url=redis_url,
                sandbox_url=stack.sandbox_url,
                receiver_url=stack.receiver_url,
                api_token=os.environ.get("CANCELFLOW_API_TOKEN") or secrets.token_urlsafe(32),
            ),
            **({"CANCELFLOW_DATABASE_URL": database_url} if database_url else {}),
            **(extra_env or {}),
        }
        return stack

    def settings(self) -> Settings:
        """The stack's settings, as its processes read them from their environment."""
        return Settings(**{name.removeprefix("CANCELFLOW_").lower(): value  # type: ignore[arg-type]
                           for name, value in self.env.items()})

    @property
    def sandbox_url(self) -> str:
        return self.external_sandbox_url or f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def receiver_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver_port}"

    @property
    def flower_url(self) -> str:
        return f"http://127.0.0.1:{self.flower_port}"

    def _spawn(self, name: str, argv: list[str],
               extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.run_dir / f"{name}.log").open("ab")
        env = {**os.environ, **self.env, **(extra_env or {})}
        proc = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.processes[name] = proc
        return proc

    def alive(self, name: str) -> bool:
        """True while ``name`` runs; raises, pointing at its log, once it has exited."""
        return self._alive(name)

    def _alive(self, name: str) -> bool:
        proc = self.processes[name]
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited ({proc.returncode}); see {self.run_dir}/{name}.log")
        return True

    def _http_ok(self, name: str, url: str) -> bool:
        self._alive(name)
        return httpx.get(url, timeout=1).status_code < 500

    def start_sandbox(self) -> None:
        self._spawn("sandbox", [sys.executable, "-m", "sandbox", "--port", str(self.sandbox_port)])
        wait_until(lambda: self._http_ok("sandbox", f"{self.sandbox_url}/_sandbox/calls"),
                   timeout=30, what="the sandbox")

    def start_worker(self, name: str = "worker", *, concurrency: int | None = None,
                     pool: str | None = None, app: str = "worker") -> None:
        """A worker with the app's own pool settings unless told otherwise (``app``: another
        Celery app on the same broker, such as the benchmarks' plain task)."""
        argv = [sys.executable, "-m", "celery", "-A", app, "worker", "--loglevel", "INFO",
                "-n", f"{name}@%h"]
        if concurrency is not None:
            argv += ["--concurrency", str(concurrency)]
        if pool is not None:
            argv += ["--pool", pool]
        self._spawn(name, argv)
        wait_until(lambda: self._worker_ready(name), timeout=60, what=f"worker {name}")

    def _worker_ready(self, name: str) -> bool:
        self._alive(name)
        from celery import Celery

        probe = Celery(broker=self.env["CANCELFLOW_REDIS_URL"])
        try:
            replies = probe.control.ping(timeout=0.5)
        finally:
            probe.close()
        return any(node.startswith(f"{name}@") for reply in replies for node in reply)

    def start_beat(self, name: str = "beat") -> None:
        self._spawn(
            name,
            [sys.executable, "-m", "celery", "-A", "worker", "beat", "--loglevel", "INFO",
             "--schedule", str(self.run_dir / f"{name}-schedule")],
        )

    def start_receiver(self, workers: int = 2, *, name: str = "receiver",
                       port: int | None = None) -> str:
        """A receiver under gunicorn; its base URL (another name and port for a second one)."""
        port = port or self.receiver_port
        url = f"http://127.0.0.1:{port}"
        # The workers' metrics files (webhooks/metrics.py): the receiver's alone, and emptied
        # first so that a restart does not sum in the counts of the previous run.
        metrics_dir = self.run_dir / f"{name}-metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir()
        self._spawn(
            name,
            [sys.executable, "-m", "gunicorn", "-c", "python:webhooks.gunicorn_conf",
             "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "--graceful-timeout", "10", "webhooks:create_app()"],
            extra_env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
        )
        wait_until(lambda: self._http_ok(name, f"{url}/healthz"), timeout=30,
                   what=f"the receiver {name}")
        return url

    def start_flower(self, basic_auth: str | None = None) -> str:
        """Flower behind basic auth (``user:password``: given, FLOWER_BASIC_AUTH, or made up and
        written to ``flower-auth`` in the run directory); returns the credentials."""
        basic_auth = basic_auth or os.environ.get("FLOWER_BASIC_AUTH") or (
            f"operator:{secrets.token_urlsafe(16)}")
        auth_file = self.run_dir / "flower-auth"
        auth_file.write_text(basic_auth + "\n")
        auth_file.chmod(0o600)
        # Flower reads FLOWER_* options from its environment: no password on a command line.
        self._spawn(
            "flower",
            [sys.executable, "-m", "celery", "-A", "worker", "flower",
             f"--port={self.flower_port}", "--address=127.0.0.1"],
            extra_env={"FLOWER_BASIC_AUTH": basic_auth},
        )
        wait_until(lambda: self._http_ok("flower", f"{self.flower_url}/healthcheck"),
                   timeout=30, what="Flower")
        return basic_auth

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal the process's whole group (a prefork worker's children die with it)."""
        proc = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(30)

    def stop(self, name: str, timeout: float = 20) -> None:
        proc = self.processes.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)
        if self.redis is not None:
            self.redis.stop()
