"""Settings: the contract's variables and defaults, secrets kept secret."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from worker.settings import EXIT_INVALID_SETTINGS, Settings, SettingsError, load_settings

LONG_TOKEN = "a-token-long-enough-0123456789abcdef"
SECRET_FIELDS = [name for name, field in Settings.model_fields.items()
                 if field.annotation == SecretStr | None]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(__import__("os").environ):
        if name.startswith("CANCELFLOW_"):
            monkeypatch.delenv(name)
    return monkeypatch


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
    monkeypatch.setenv("CANCELFLOW_API_TOKEN", LONG_TOKEN)
    s = Settings()
    assert "hunter2" not in repr(s) and LONG_TOKEN not in str(s)


@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_an_empty_or_blank_secret_is_unset(clean_env: pytest.MonkeyPatch, value: str) -> None:
    """CANCELFLOW_API_TOKEN="" (or blank), and every other secret so set, reads as not set."""
    assert "api_token" in SECRET_FIELDS and "bambora_client_secret" in SECRET_FIELDS
    for name in SECRET_FIELDS:
        clean_env.setenv(f"CANCELFLOW_{name.upper()}", value)
    from_env = Settings()
    given = Settings(**{name: value for name in SECRET_FIELDS})  # type: ignore[arg-type]
    for name in SECRET_FIELDS:
        assert getattr(from_env, name) is None and getattr(given, name) is None, name


def test_a_blank_setting_takes_its_default(clean_env: pytest.MonkeyPatch) -> None:
    """A blank number, URL or zone is unset too: the default applies, not a parse error."""
    for name in ("HTTP_TIMEOUT_SECONDS", "BAMBORA_BASE_URL", "PAYWALL_TIMEZONE", "LOG_FORMAT",
                 "SIXDOT50_BASE_URL"):
        clean_env.setenv(f"CANCELFLOW_{name}", " ")
    s = Settings()
    assert (s.http_timeout_seconds, s.bambora_base_url, s.paywall_timezone, s.log_format,
            s.sixdot50_base_url) == (10, "https://api.bambora.com", "Europe/Istanbul", "text",
                                     None)


def test_a_short_api_token_is_refused_by_name_never_by_value() -> None:
    """A token under 32 characters is invalid; the error names the variable, not the value."""
    with pytest.raises(ValidationError) as refused:
        Settings(api_token="only-31-characters-long-0123456")  # type: ignore[arg-type]
    assert "at least 32" in str(refused.value)
    ok = Settings(api_token=f"  {LONG_TOKEN}\n")  # type: ignore[arg-type]
    assert ok.api_token is not None and ok.api_token.get_secret_value() == LONG_TOKEN


def test_invalid_settings_stop_the_process_with_one_line(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """load_settings prints one line naming every invalid variable and exits with status 4."""
    clean_env.setenv("CANCELFLOW_API_TOKEN", "s3cret-but-short")
    clean_env.setenv("CANCELFLOW_RETRY_MAX_ATTEMPTS", "many")
    load_settings.cache_clear()
    try:
        with pytest.raises(SettingsError) as stopped:
            load_settings()
    finally:
        load_settings.cache_clear()
    assert stopped.value.code == EXIT_INVALID_SETTINGS
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cancelflow: invalid settings: ")
    assert "CANCELFLOW_API_TOKEN: it has 16 characters" in err
    assert "CANCELFLOW_RETRY_MAX_ATTEMPTS" in err and "s3cret" not in err


def test_visibility_timeout_outlives_the_longest_countdown() -> None:
    """Redis must not redeliver a retry that is still waiting for its countdown."""
    s = Settings(retry_max_seconds=300, http_timeout_seconds=10)
    assert s.broker_visibility_timeout > s.retry_max_seconds + s.leg_lease_seconds
