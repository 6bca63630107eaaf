"""The producer examples of docs/examples/, each run as a real process against the suite's Redis
and a real worker: each one's message becomes the job its idempotency key names, and that job
cancels a real (sandbox) 6DOT50 batch to the end."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine

from devstack.sandbox_control import SandboxControl
from devstack.stack import Stack
from tests.support import wait_for_job
from worker.domain.request import job_id_for_key

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
NODE_EXAMPLE = EXAMPLES / "node"


@pytest.fixture(scope="module")
def node_example() -> Path:
    """The celery-node example with its pinned dependencies installed (``npm ci``)."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the celery-node example: node and npm are required")
        pytest.skip("node/npm are not installed: the celery-node example cannot run")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_EXAMPLE,
                   check=True, timeout=300)
    return NODE_EXAMPLE


def run_example(argv: list[str], stack: Stack, cwd: Path) -> str:
    """Run one example to its end; its last line of output is the job id it printed."""
    env = {**os.environ, "CANCELFLOW_REDIS_URL": stack.settings().redis_url}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def check_example_cancels(argv: list[str], stack: Stack, ledger: Engine,
                          sandbox: SandboxControl, cwd: Path) -> None:
    """Given a DRAFT batch, when the example submits it under a fresh key, the job of that key
    ends reconciled with the batch's one leg cancelled."""
    batch = sandbox.seed_batch(count=3, amount_each="100.00")["id"]
    key = f"example-{uuid.uuid4()}"
    printed = run_example([*argv, key, batch], stack, cwd)
    assert printed == str(job_id_for_key(key))
    job = wait_for_job(ledger, printed, timeout=60)
    assert job["state"] == "reconciled", job
    assert [(leg["provider"], leg["target"], leg["state"]) for leg in job["legs"]] == [
        ("sixdot50", {"batch_id": batch}, "cancelled")]


def test_the_python_send_task_example_submits_a_job(stack: Stack, ledger: Engine,
                                                    sandbox: SandboxControl) -> None:
    """python_send_task.py (Celery send_task) submits a job that is carried out."""
    check_example_cancels([sys.executable, "python_send_task.py"], stack, ledger, sandbox,
                          EXAMPLES)


def test_the_raw_kombu_example_submits_a_job(stack: Stack, ledger: Engine,
                                             sandbox: SandboxControl) -> None:
    """kombu_raw.py (a hand-built protocol 2 message) submits a job that is carried out."""
    check_example_cancels([sys.executable, "kombu_raw.py"], stack, ledger, sandbox, EXAMPLES)


def test_the_celery_node_example_submits_a_job(stack: Stack, ledger: Engine,
                                               sandbox: SandboxControl,
                                               node_example: Path) -> None:
    """node/submit.js (celery-node) submits a job that is carried out."""
    node = shutil.which("node")
    assert node is not None
    check_example_cancels([node, "submit.js"], stack, ledger, sandbox, node_example)
