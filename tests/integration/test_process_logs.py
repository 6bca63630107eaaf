"""Real processes: invalid settings stop each one at start with one line; a worker and a
receiver logging JSON say what an operator needs (providers at start, why a leg ended, when a
job ended), with ids as fields and no secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import Engine

from devstack.stack import Stack
from devstack.waiting import wait_until
from tests.support import wait_for_job
from worker.producer import publish

# Bambora's credentials arrive empty and blank, as a missing secret often does: unset.
STACK_ENV = {"CANCELFLOW_LOG_FORMAT": "json", "CANCELFLOW_BAMBORA_CLIENT_ID": "",
             "CANCELFLOW_BAMBORA_CLIENT_SECRET": "   "}
STACK_PROCESSES = ("worker", "receiver")
SHORT_TOKEN = "too-short-but-secret"
BIN = Path(sys.executable).parent


def _json_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def _secrets(stack: Stack) -> list[str]:
    names = ("API_TOKEN", "SIXDOT50_KEY", "SIXDOT50_SECRET", "PAYWALL_API_KEY_PUBLIC",
             "PAYWALL_API_CLIENT_PUBLIC", "PAYWALL_API_KEY_PRIVATE", "PAYWALL_API_CLIENT_PRIVATE",
             "PAYWALL_HASH_KEYS")
    return [stack.env[f"CANCELFLOW_{name}"] for name in names]


def test_json_logs_explain_a_refused_leg_and_name_no_secret(
    stack: Stack, producer: Celery, ledger: Engine
) -> None:
    """The worker logs its providers at start, the refused leg (WARNING, with its ids) and the
    job's end as JSON objects; the receiver's app lines are JSON beside gunicorn's."""
    key = f"process-logs-{os.getpid()}"
    job_id = publish(producer, {"idempotency_key": key, "legs": [
        {"provider": "bambora", "merchant": "T123456789", "payment_reference": "ref-1"}]})
    assert job_id is not None
    assert wait_for_job(ledger, job_id)["state"] == "failed"
    worker_log = stack.run_dir / "worker.log"

    def job_line() -> dict[str, Any] | None:
        return next((line for line in _json_lines(worker_log)
                     if line.get("job_id") == job_id and line.get("leg_counts")), None)

    assert wait_until(job_line, timeout=10, what="the job's end in the worker log")["state"] == (
        "failed")
    lines = _json_lines(worker_log)
    [start] = [line for line in lines if line["message"].startswith("worker starting")]
    assert start["providers_configured"] == ["sixdot50", "paywall"]
    assert "bambora NOT configured (missing CANCELFLOW_BAMBORA_CLIENT_ID" in start["message"]
    [leg] = [line for line in lines if line.get("leg_id") and line.get("job_id") == job_id]
    assert (leg["level"], leg["provider"], leg["state"], leg["reason"]) == (
        "WARNING", "bambora", "rejected", "provider_not_configured")
    receiver_log = stack.run_dir / "receiver.log"
    assert any(line["message"].startswith("receiver starting")
               for line in _json_lines(receiver_log))
    for path in (worker_log, receiver_log):
        text = path.read_text()
        assert "[INFO]" not in text and "[WARNING]" not in text  # every log line is JSON
        for secret in _secrets(stack):
            assert secret not in text, path.name


@pytest.mark.parametrize("argv", [
    ["celery", "-A", "worker", "worker"],
    ["celery", "-A", "worker", "beat"],
    ["gunicorn", "-c", "python:webhooks.gunicorn_conf", "--bind", "127.0.0.1:0",
     "webhooks:create_app()"],
    ["cancelflow", "report"],
], ids=["worker", "beat", "receiver", "cli"])
def test_a_short_token_stops_the_process_at_start_with_one_line(
    tmp_path: Path, argv: list[str]
) -> None:
    """CANCELFLOW_API_TOKEN under 32 characters: exit status 4 and one line naming the
    variable (never its value), before anything is served or consumed."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("CANCELFLOW_")}
    env.update(CANCELFLOW_API_TOKEN=SHORT_TOKEN,
               CANCELFLOW_DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.db'}")
    done = subprocess.run([str(BIN / argv[0]), *argv[1:]], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 4
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "cancelflow: invalid settings: CANCELFLOW_API_TOKEN: it has 20 characters; a token "
        "needs at least 32 (make one with: python3 -c 'import secrets; "
        "print(secrets.token_urlsafe(32))')"]
    assert not (tmp_path / "ledger.db").exists()
