"""Settings: the contract's variables and defaults, secrets kept secret."""

from __future__ import annotations

import pytest

from worker.settings import Settings


def test_defaults_are_the_contracts(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no environment, every default is the one the contract gives."""
    for name in list(__import__("os").environ):
        if name.startswith("CANCELFLOW_"):
            monkeypatch.delenv(name)
    s = Settings()
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.database_url == "sqlite:///var/cancelflow.db"
    assert s.api_token is None and s.public_url is None
    assert s.paywall_timezone == "Europe/Istanbul"
    assert s.bambora_base_url == "https://api.bambora.com"
    assert s.bambora_auth_url == "https://auth.bambora.com"
    assert (s.http_timeout_seconds, s.retry_base_seconds, s.retry_max_seconds,
            s.retry_max_attempts) == (10, 2, 300, 8)
    assert (s.callback_timeout_seconds, s.sweep_interval_seconds) == (900, 60)


def test_environment_is_read_with_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """CANCELFLOW_* variables set the values; hash keys split on commas."""
    monkeypatch.setenv("CANCELFLOW_SIXDOT50_BASE_URL", "https://pay.example/api/")
    monkeypatch.setenv("CANCELFLOW_PAYWALL_HASH_KEYS", "one, two ,")
    s = Settings()
    assert s.sixdot50_base_url == "https://pay.example/api"
    assert s.hash_keys() == [b"one", b"two"]


def test_secrets_do_not_print(monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret never shows in repr or str of the settings."""
    monkeypatch.setenv("CANCELFLOW_SIXDOT50_SECRET", "hunter2")
    monkeypatch.setenv("CANCELFLOW_API_TOKEN", "tok-xyz")
    s = Settings()
    assert "hunter2" not in repr(s) and "tok-xyz" not in str(s)


def test_visibility_timeout_outlives_the_longest_countdown() -> None:
    """Redis must not redeliver a retry that is still waiting for its countdown."""
    s = Settings(retry_max_seconds=300, http_timeout_seconds=10)
    assert s.broker_visibility_timeout > s.retry_max_seconds + s.leg_lease_seconds
