"""docker-compose.yml is the production shape: every setting from the environment or .env,
nothing pointing at the sandbox unless asked, secrets required, health checked, restarted."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.stack import stack_env
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
CANCELFLOW = ("worker", "beat", "webhooks")
# In the contract's Configuration table but not (yet) read by any process.
CONTRACT_ONLY: set[str] = set()
SETTINGS = {f"CANCELFLOW_{name.upper()}" for name in Settings.model_fields} | CONTRACT_ONLY
SECRETS = {f"CANCELFLOW_{name.upper()}" for name, field in Settings.model_fields.items()
           if "SecretStr" in str(field.annotation)} | CONTRACT_ONLY
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(:?[-?])?([^}]*)\}")


def env_file(name: str) -> dict[str, str]:
    """KEY=value lines of an env file, as compose reads them (comments and blanks skipped)."""
    values = {}
    for line in (ROOT / name).read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def environment(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in (SERVICES[service].get("environment") or {}).items()}


def test_every_setting_reaches_the_processes_from_the_environment() -> None:
    """Each CANCELFLOW_* setting is passed to worker, beat and receiver, interpolated from the
    environment or .env: Paywall's and Bambora's keys, ids and secrets included."""
    for service in CANCELFLOW:
        env = {k: v for k, v in environment(service).items() if k.startswith("CANCELFLOW_")}
        assert set(env) == SETTINGS, service
        for name, value in env.items():
            assert INTERPOLATION.search(value), f"{service}: {name} is written in, not passed"
    paywall_bambora = {n for n in SETTINGS if re.match(r"CANCELFLOW_(PAYWALL|BAMBORA)_", n)}
    assert len(paywall_bambora) == 12


def test_nothing_defaults_to_the_sandbox() -> None:
    """No value or default outside the sandbox service names the sandbox; a setting's only
    defaults are empty (the process's own) or the bundled Redis."""
    for name, service in SERVICES.items():
        if name != "sandbox":
            assert "sandbox" not in yaml.safe_dump(service), name
    for service in CANCELFLOW:
        for name, value in environment(service).items():
            for _var, op, default in INTERPOLATION.findall(value):
                if op == ":-":
                    assert default in ("", "redis://redis:6379/0"), (service, name)


def test_the_sandbox_and_its_wiring_come_only_with_the_sandbox_profile() -> None:
    """The sandbox service is the only one with a profile; its unauthenticated control API is
    on the host's loopback; only .env.sandbox points the providers at it, with the same
    credentials the local stack uses."""
    with_profiles = {n: s["profiles"] for n, s in SERVICES.items() if "profiles" in s}
    assert with_profiles == {"sandbox": ["sandbox"]}
    assert SERVICES["sandbox"]["ports"] == ["127.0.0.1:9000:9000"]
    assert SERVICES["sandbox"]["build"]["target"] == "sandbox"
    assert all(SERVICES[s]["build"]["target"] == "production" for s in CANCELFLOW)
    sandbox = env_file(".env.sandbox")
    assert sandbox["COMPOSE_PROFILES"] == "sandbox"
    expected = stack_env(Path("/unused"), redis_url="", sandbox_url="http://sandbox:9000",
                         receiver_url="http://webhooks:8000", api_token="")
    for name in SETTINGS:
        if name in sandbox and name in expected:
            assert sandbox[name] == expected[name], name
    assert all(sandbox[n].startswith("http://sandbox:9000/") for n in sandbox
               if n.endswith(("_BASE_URL", "_AUTH_URL")))
    assert "CANCELFLOW_API_TOKEN" not in sandbox
    assert not any("sandbox" in value for value in env_file(".env.example").values())


def test_env_example_documents_every_setting_and_holds_no_secret() -> None:
    """.env.example names every setting and every variable compose requires; secrets and the
    required values are empty there."""
    text = (ROOT / ".env.example").read_text()
    example = env_file(".env.example")
    for name in SETTINGS:
        assert name in text, name
    used = {var for service in SERVICES.values()
            for var, *_ in INTERPOLATION.findall(yaml.safe_dump(service))}
    required = {var for service in SERVICES.values()
                for var, op, _ in INTERPOLATION.findall(yaml.safe_dump(service)) if op == ":?"}
    assert required == {"POSTGRES_PASSWORD", "CANCELFLOW_API_TOKEN", "FLOWER_BASIC_AUTH"}
    assert used <= set(example), used - set(example)
    for name in SECRETS | required:
        assert example.get(name) == "", name
    assert all(value == "" for value in example.values())


def test_secrets_that_open_things_are_required() -> None:
    """The Postgres password, the API token and Flower's basic auth come from the environment
    or compose refuses to start; Flower is not published and sees only the broker."""
    assert environment("postgres")["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert "${POSTGRES_PASSWORD:?" in environment("worker")["CANCELFLOW_DATABASE_URL"]
    assert environment("worker")["CANCELFLOW_API_TOKEN"].startswith("${CANCELFLOW_API_TOKEN:?")
    flower = SERVICES["flower"]
    assert "ports" not in flower
    assert environment("flower")["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    assert set(environment("flower")) == {"CANCELFLOW_REDIS_URL", "CANCELFLOW_LOG_FORMAT",
                                          "FLOWER_BASIC_AUTH"}
    assert [n for n, s in SERVICES.items() if "ports" in s] == ["webhooks", "sandbox"]


def test_every_service_is_health_checked_and_restarted() -> None:
    """Receiver on /readyz, worker and beat by `celery inspect ping` of their own node, Flower on
    /healthcheck; every service restarts unless stopped."""
    def check(name: str) -> str:
        return " ".join(SERVICES[name]["healthcheck"]["test"])

    assert "http://127.0.0.1:8000/readyz" in check("webhooks")
    assert 'inspect ping -d "worker@$$HOSTNAME"' in check("worker")
    assert "worker@%h" in SERVICES["worker"]["command"]
    assert 'inspect ping -d "celerybeat@$$HOSTNAME"' in check("beat")
    assert "--enable-remote-control" in SERVICES["beat"]["command"]
    assert "http://127.0.0.1:5555/healthcheck" in check("flower")
    for name, service in SERVICES.items():
        assert service["restart"] == "unless-stopped", name
        assert "healthcheck" in service, name


def test_redis_keeps_every_task() -> None:
    """The broker writes an append-only file and never evicts."""
    command = SERVICES["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_the_receiver_runs_gunicorn_with_the_projects_config() -> None:
    """gunicorn loads webhooks.gunicorn_conf (settings checked first, one log format)."""
    command = SERVICES["webhooks"]["command"]
    assert command[:3] == ["gunicorn", "-c", "python:webhooks.gunicorn_conf"]
    assert command[-1] == "webhooks:create_app()"


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 check=False).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_make_compose_config_accepts_both_shapes() -> None:
    """`make compose-config` (docker compose, or docker-compose) validates the production
    shape with .env.example and the sandbox profile with .env.sandbox; without the required
    secrets compose refuses, naming the missing one."""
    compose = _compose_command()
    if compose is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed here")
    done = subprocess.run(["make", "-s", "compose-config"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    bare = {k: v for k, v in os.environ.items()
            if k not in ("POSTGRES_PASSWORD", "CANCELFLOW_API_TOKEN", "FLOWER_BASIC_AUTH")}
    refused = subprocess.run([*compose, "--env-file", ".env.example", "config", "--quiet"],
                             cwd=ROOT, env=bare, capture_output=True, text=True, timeout=120,
                             check=False)
    assert refused.returncode != 0
    assert "set POSTGRES_PASSWORD" in refused.stderr or "set CANCELFLOW_API_TOKEN" in (
        refused.stderr)
