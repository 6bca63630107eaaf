"""Configuration: one typed object read from ``CANCELFLOW_*`` environment variables.

Nothing here runs at import time; call :func:`load_settings`. Provider credentials have no
defaults: a provider whose settings are missing is refused per leg
(``provider_not_configured``), never a crash.

An empty or blank value is an unset one (``CANCELFLOW_API_TOKEN=""`` is how a missing secret
often arrives from k8s, systemd or a .env line): it takes the default, and a secret stays None.
"""

from __future__ import annotations

import base64
import binascii
import sys
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_API_TOKEN_LENGTH = 32
# Standard Webhooks: "whsec_" + base64 of a key of 24 to 64 random bytes.
STANDARD_WEBHOOKS_PREFIX = "whsec_"
MIN_NOTIFY_KEY_BYTES = 24
NOTIFY_GENERATE_COMMAND = (
    "python3 -c 'import base64, secrets; print(\"whsec_\" + "
    "base64.b64encode(secrets.token_bytes(32)).decode())'"
)
GENERATE_COMMAND = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
# The exit status of a process whose settings are invalid. Under gunicorn, a worker that exits
# with 4 (its APP_LOAD_ERROR) stops the master instead of being started again and again.
EXIT_INVALID_SETTINGS = 4


class Settings(BaseSettings):
    """Every setting of the contract, with the contract's defaults."""

    model_config = SettingsConfigDict(
        env_prefix="CANCELFLOW_", extra="ignore", frozen=True, env_ignore_empty=True
    )

    redis_url: str = "redis://127.0.0.1:6379/0"
    public_url: str | None = None
    database_url: str = "sqlite:///var/cancelflow.db"
    api_token: SecretStr | None = None
    # Signs outcome webhooks (issue 17); None: a request with notify_url is refused as invalid.
    notify_secret: SecretStr | None = None

    sixdot50_base_url: str | None = None
    sixdot50_key: SecretStr | None = None
    sixdot50_secret: SecretStr | None = None

    paywall_base_url: str | None = None
    paywall_private_base_url: str | None = None
    paywall_api_key_public: SecretStr | None = None
    paywall_api_client_public: SecretStr | None = None
    paywall_api_key_private: SecretStr | None = None
    paywall_api_client_private: SecretStr | None = None
    paywall_hash_keys: SecretStr | None = None
    paywall_timezone: str = "Europe/Istanbul"

    bambora_base_url: str = "https://api.bambora.com"
    bambora_auth_url: str = "https://auth.bambora.com"
    bambora_client_id: SecretStr | None = None
    bambora_client_secret: SecretStr | None = None

    http_timeout_seconds: float = Field(default=10, gt=0)
    retry_base_seconds: float = Field(default=2, ge=0)
    retry_max_seconds: float = Field(default=300, ge=0)
    retry_max_attempts: int = Field(default=8, ge=1)
    callback_timeout_seconds: float = Field(default=900, gt=0)
    sweep_interval_seconds: float = Field(default=60, gt=0)

    # Beyond the contract: calls in flight at once per provider, in each worker process.
    concurrency_sixdot50: int = Field(default=8, ge=1, le=500)
    concurrency_paywall: int = Field(default=8, ge=1, le=500)
    concurrency_bambora: int = Field(default=32, ge=1, le=500)
    # Beyond the contract: logs as text lines (default) or one JSON object a line.
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Beyond the contract: how many reverse proxies in front of the receiver set
    # X-Forwarded-For/-Proto. 0 ignores those headers (anyone could forge them).
    trusted_proxies: int = Field(default=0, ge=0, le=5)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {name: value for name, value in data.items() if not _blank(value)}

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("api_token", mode="after")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        # Whitespace around a token is never meant (a bearer header's is stripped too).
        token = value.get_secret_value().strip()
        if len(token) < MIN_API_TOKEN_LENGTH:
            raise ValueError(
                f"it has {len(token)} characters; a token needs at least "
                f"{MIN_API_TOKEN_LENGTH} (make one with: {GENERATE_COMMAND})"
            )
        return SecretStr(token)

    @field_validator("notify_secret", mode="after")
    @classmethod
    def _standard_webhooks_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value().strip()
        notify_key_bytes(secret)
        return SecretStr(secret)

    @field_validator(
        "public_url", "sixdot50_base_url", "paywall_base_url", "paywall_private_base_url",
        "bambora_base_url", "bambora_auth_url",
    )
    @classmethod
    def _strip_trailing_slash(cls, value: str | None) -> str | None:
        # Documented paths are appended to these bases; "x/" + "/path" would double the slash.
        return value.rstrip("/") if value else value

    @property
    def leg_lease_seconds(self) -> float:
        """How long a claimed leg stays ours: a round makes at most four calls (a token, a read,
        the cancel, a read of the figures), each bounded by the timeout."""
        return 4 * self.http_timeout_seconds + 10

    @property
    def broker_visibility_timeout(self) -> int:
        """Above the longest retry countdown plus a round, so Redis never redelivers a task
        that is still waiting for its countdown or still running."""
        return int(self.retry_max_seconds + self.leg_lease_seconds + 60)

    def hash_keys(self) -> list[bytes]:
        """The Paywall callback hash keys, in order; empty when not configured."""
        if self.paywall_hash_keys is None:
            return []
        raw = self.paywall_hash_keys.get_secret_value()
        return [key.strip().encode() for key in raw.split(",") if key.strip()]


def notify_key_bytes(secret: str) -> bytes:
    """The HMAC key a ``whsec_`` secret stands for; ValueError (never echoing it) if malformed."""
    if not secret.startswith(STANDARD_WEBHOOKS_PREFIX):
        raise ValueError(f"it must start with {STANDARD_WEBHOOKS_PREFIX} "
                         f"(make one with: {NOTIFY_GENERATE_COMMAND})")
    encoded = secret.removeprefix(STANDARD_WEBHOOKS_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"what follows {STANDARD_WEBHOOKS_PREFIX} is not base64 "
                         f"(make one with: {NOTIFY_GENERATE_COMMAND})") from None
    if len(key) < MIN_NOTIFY_KEY_BYTES:
        raise ValueError(f"its key has {len(key)} bytes; Standard Webhooks asks for at least "
                         f"{MIN_NOTIFY_KEY_BYTES} (make one with: {NOTIFY_GENERATE_COMMAND})")
    return key


def _blank(value: Any) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return isinstance(value, str) and not value.strip()


class SettingsError(SystemExit):
    """The process's settings are invalid: it stops at start, with one line on stderr."""

    def __init__(self, line: str) -> None:
        super().__init__(EXIT_INVALID_SETTINGS)
        self.line = line

    def __str__(self) -> str:
        return self.line


def describe(error: ValidationError) -> str:
    """One line naming each invalid variable and why, never its value."""
    problems = []
    for item in error.errors():
        names = [str(part) for part in item["loc"]]
        variable = "CANCELFLOW_" + "_".join(names).upper() if names else "settings"
        problems.append(f"{variable}: {item['msg'].removeprefix('Value error, ')}")
    return "invalid settings: " + "; ".join(problems)


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """The process's settings, read once from the environment.

    Invalid ones (a token under 32 characters, a timeout that is not a number) stop the process:
    one line on stderr naming the variable, and exit status 4, whichever process it is (worker,
    beat, Flower, receiver, CLI).
    """
    try:
        return Settings()
    except ValidationError as exc:
        line = f"cancelflow: {describe(exc)}"
        print(line, file=sys.stderr, flush=True)
        raise SettingsError(line) from None
