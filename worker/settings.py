"""Configuration: one typed object read from ``CANCELFLOW_*`` environment variables.

Nothing here runs at import time; call :func:`load_settings`. Provider credentials have no
defaults: a provider whose settings are missing is refused per leg
(``provider_not_configured``), never a crash.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting of the contract, with the contract's defaults."""

    model_config = SettingsConfigDict(env_prefix="CANCELFLOW_", extra="ignore", frozen=True)

    redis_url: str = "redis://127.0.0.1:6379/0"
    public_url: str | None = None
    database_url: str = "sqlite:///var/cancelflow.db"
    api_token: SecretStr | None = None

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


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
