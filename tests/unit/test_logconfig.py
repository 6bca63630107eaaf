"""Logging: one setup for every process, text or JSON lines, the configuration line at start."""

from __future__ import annotations

import json
import logging
import logging.config
from collections.abc import Iterator

import httpx
import pytest

from worker.bootstrap import build_drivers, describe_providers, log_configuration
from worker.domain.states import Provider
from worker.logconfig import (
    HANDLER_NAME,
    JsonFormatter,
    celery_log_level,
    configure_logging,
    gunicorn_logconfig,
    host_configured_logging,
)
from worker.settings import Settings

SECRETS = {
    "sixdot50_key": "k-6d50-visible-nowhere", "sixdot50_secret": "s-6d50-visible-nowhere",
    "paywall_api_key_public": "pw-key-pub-visible-nowhere",
    "paywall_api_client_public": "pw-client-pub-visible-nowhere",
    "paywall_api_key_private": "pw-key-priv-visible-nowhere",
    "paywall_api_client_private": "pw-client-priv-visible-nowhere",
    "paywall_hash_keys": "hash-one-visible-nowhere,hash-two-visible-nowhere",
    "bambora_client_id": "bb-id-visible-nowhere", "bambora_client_secret": "bb-s-visible-nowhere",
    "api_token": "api-token-visible-nowhere-0123456789",
}
URLS = {
    "sixdot50_base_url": "https://user:pa55word@pay.6dot50.example/api?key=q-visible-nowhere",
    "paywall_base_url": "https://api.paywall.example/paywall",
    "paywall_private_base_url": "https://private.paywall.example/paywall",
}


@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    """The root logger, put back as it was after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("cancelflow.outcomes", logging.WARNING, __file__, 1,
                               "leg %s ended", ("L1",), None)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_the_ids_as_fields() -> None:
    """A JSON line is one object: time, level, logger, message, and each field given."""
    line = JsonFormatter().format(_record(job_id="J1", leg_id="L1", provider="bambora",
                                          reason="not_found", provider_code="E42"))
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "leg L1 ended" and data["level"] == "WARNING"
    assert data["logger"] == "cancelflow.outcomes" and data["time"].endswith("+00:00")
    assert {k: data[k] for k in ("job_id", "leg_id", "provider", "reason", "provider_code")} == {
        "job_id": "J1", "leg_id": "L1", "provider": "bambora", "reason": "not_found",
        "provider_code": "E42"}


def test_json_lines_keep_a_traceback_on_one_line() -> None:
    """An exception's traceback is a field of the same line, not lines of its own."""
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), None)
        import sys

        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["exception"]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_configure_logging_writes_the_chosen_format_to_stderr(
    root_logging: logging.Logger, capsys: pytest.CaptureFixture[str], log_format: str
) -> None:
    """The root logger writes to stderr in the configured format, httpx quieted; again is
    the same setup, not a second handler."""
    settings = Settings(log_format=log_format)  # type: ignore[arg-type]
    configure_logging(settings)
    configure_logging(settings)
    assert [h.get_name() for h in root_logging.handlers].count(HANDLER_NAME) == 1
    logging.getLogger("cancelflow.test").info("job %s ended", "J1", extra={"job_id": "J1"})
    logging.getLogger("httpx").info("HTTP Request: GET https://example/ 200")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    if log_format == "json":
        assert json.loads(lines[0])["job_id"] == "J1"
    else:
        assert lines[0].endswith("[INFO] cancelflow.test: job J1 ended")


def test_the_app_factory_leaves_a_hosts_logging_alone(root_logging: logging.Logger) -> None:
    """Under a test runner (or any host that set up logging) the app does not take over."""
    root_logging.handlers[:] = []
    assert not host_configured_logging()
    configure_logging(Settings())
    assert not host_configured_logging()  # only ours
    root_logging.addHandler(logging.NullHandler())
    assert host_configured_logging()


def test_gunicorn_logconfig_routes_gunicorn_and_app_lines_through_one_handler(
    root_logging: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    """gunicorn's own loggers and the root logger share our handler and format."""
    error_log = logging.getLogger("gunicorn.error")
    saved = list(error_log.handlers), error_log.propagate
    try:
        logging.config.dictConfig(gunicorn_logconfig(Settings(log_format="json")))  # type: ignore[arg-type]
        error_log.info("Booting worker with pid: %s", 7)
        logging.getLogger("webhooks.app").warning("app line")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
        assert [(line["logger"], line["message"]) for line in lines] == [
            ("gunicorn.error", "Booting worker with pid: 7"), ("webhooks.app", "app line")]
    finally:
        error_log.handlers[:], error_log.propagate = saved


def test_celery_log_level_is_the_more_verbose_of_the_two() -> None:
    """A bare worker (Celery's WARNING) still logs at CANCELFLOW_LOG_LEVEL; --loglevel DEBUG
    goes lower."""
    info = Settings()
    assert celery_log_level(logging.WARNING, info) == logging.INFO
    assert celery_log_level("DEBUG", info) == logging.DEBUG
    assert celery_log_level(None, Settings(log_level="ERROR")) == logging.ERROR  # type: ignore[arg-type]


def test_start_line_names_the_providers_and_no_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The configuration line says which providers are set up, at which base URLs, and what
    the others lack; no secret, no user:password, no query string."""
    settings = Settings(**SECRETS, **URLS)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="worker.bootstrap"):
        log_configuration(settings, "worker")
    [record] = caplog.records
    text = record.getMessage()
    assert "sixdot50 configured (base_url=https://pay.6dot50.example/api)" in text
    assert "paywall configured (base_url=https://api.paywall.example/paywall, " in text
    assert "bambora configured (base_url=https://api.bambora.com, " in text
    assert "API token set" in text and "hash keys: 2" in text
    assert record.providers_configured == ["sixdot50", "paywall", "bambora"]
    for secret in [*SECRETS.values(), "pa55word", "q-visible-nowhere", "hash-one"]:
        assert secret not in text
    bare = describe_providers(Settings())
    assert "bambora NOT configured (missing CANCELFLOW_BAMBORA_CLIENT_ID, " in bare
    assert "provider_not_configured" in bare


@pytest.mark.parametrize("dropped", [None, *SECRETS, *URLS])
def test_the_start_line_and_the_drivers_agree(dropped: str | None) -> None:
    """A provider is said to be configured exactly when the worker builds its driver."""
    values = {**SECRETS, **URLS}
    if dropped:
        values.pop(dropped)
    settings = Settings(**values)  # type: ignore[arg-type]
    with httpx.Client() as client:
        drivers = build_drivers(settings, client)
    text = describe_providers(settings)
    for provider in Provider:
        assert (provider in drivers) == (f"{provider.value} configured" in text), (dropped, text)
